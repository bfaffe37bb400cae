package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/linkflow/linkflow/internal/app"
	"github.com/linkflow/linkflow/internal/startstop"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/remote"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/store"
)

// runSandboxProvider serves the sandbox's integrations over the remote
// provider protocol (docs/remote-providers.md): the reference remote
// integration, and a way to try --remote-providers.
func runSandboxProvider(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sandbox-provider", flag.ContinueOnError)
	addr := fs.String("http-addr", "127.0.0.1:8090", "address the provider protocol is served on")
	redisURL := fs.String("redis-url", "redis://127.0.0.1:6379/0", "Redis URL for the sandbox accounts' state")
	secret := fs.String("secret", "", "bearer token callers must send (empty: none)")
	latency := fs.Duration("sandbox-latency", 0, "latency per operation")
	slowMS := fs.Int("sandbox-slow-ms", 2000, "how long each operation of user_slow takes, in ms")
	logLevel := fs.String("log-level", "info", "log level")
	metricsAddr := fs.String("metrics-addr", "", "address serving Prometheus /metrics and pprof (empty: off)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel, "json")
	if err != nil {
		return err
	}
	rdb, err := store.DialRedis(*redisURL, false)
	if err != nil {
		return err
	}
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return errors.New("sandbox-provider: redis is not reachable at " + store.RedactURLs(*redisURL))
	}
	sb, err := sandbox.New(sandbox.Config{Store: sandbox.NewRedisStore(rdb), Latency: *latency, SlowDelay: time.Duration(*slowMS) * time.Millisecond, Logger: log})
	if err != nil {
		return err
	}
	reg := operations.NewRegistry(nil)
	if err := sandbox.Register(reg, sb); err != nil {
		return err
	}
	h, err := remote.NewHandler(remote.HandlerConfig{Registry: reg, Secret: *secret, Logger: log})
	if err != nil {
		return err
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector())
	var g startstop.Group
	if *metricsAddr != "" {
		g.Add("metrics server", app.OpsServer(*metricsAddr, metrics, nil, log))
	}
	g.Add("provider protocol", startstop.NewHTTPServer("provider protocol", *addr, "choose another address with --http-addr", h, log))
	return g.Run(ctx, nil)
}
