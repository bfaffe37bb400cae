package main

import (
	"context"
	"flag"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/app"
)

// runSandboxProvider serves the sandbox's integrations over the remote
// provider protocol: the reference remote integration, and a way to try
// --remote-providers.
func runSandboxProvider(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sandbox-provider", flag.ContinueOnError)
	var c app.SandboxProvider
	fs.StringVar(&c.Addr, "http-addr", "127.0.0.1:8090", "address the provider protocol is served on")
	fs.StringVar(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL for the sandbox accounts' state")
	fs.StringVar(&c.Secret, "secret", "", "bearer token callers must send (empty: none)")
	fs.DurationVar(&c.Sandbox.Latency, "sandbox-latency", 0, "latency per operation")
	slowMS := fs.Int("sandbox-slow-ms", 2000, "how long each operation of user_slow takes, in ms")
	logLevel := fs.String("log-level", "info", "log level")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "address serving Prometheus /metrics and pprof (empty: off)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c.Sandbox.SlowDelay = time.Duration(*slowMS) * time.Millisecond
	var err error
	if c.Logger, err = newLogger(*logLevel, "json"); err != nil {
		return err
	}
	redis.SetLogger(redisLogger{c.Logger.Named("redis")})
	return app.ServeSandboxProvider(ctx, c)
}
