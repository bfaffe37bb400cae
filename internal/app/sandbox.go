package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/redact"
	"github.com/linkflow/linkflow/internal/startstop"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/remote"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/store"
)

// SandboxProvider configures ServeSandboxProvider.
type SandboxProvider struct {
	Logger *zap.Logger
	// Addr serves the provider protocol; MetricsAddr, when set, metrics.
	Addr, MetricsAddr string
	// RedisURL holds the sandbox accounts' state.
	RedisURL string
	// Secret is the bearer token callers must send ("": none).
	Secret string
	// Sandbox's Latency and SlowDelay apply (its Store and Logger are filled
	// here).
	Sandbox sandbox.Config
}

// ServeSandboxProvider serves the sandbox's integrations over the remote
// provider protocol (docs/remote-providers.md) until ctx ends.
func ServeSandboxProvider(ctx context.Context, c SandboxProvider) error {
	rdb, err := store.DialRedis(c.RedisURL, false)
	if err != nil {
		return err
	}
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return errors.New("sandbox-provider: redis is not reachable at " + redact.URLs(c.RedisURL))
	}
	c.Sandbox.Store, c.Sandbox.Logger = sandbox.NewRedisStore(rdb), c.Logger
	sb, err := sandbox.New(c.Sandbox)
	if err != nil {
		return err
	}
	reg := operations.NewRegistry(nil)
	if err := sandbox.Register(reg, sb); err != nil {
		return err
	}
	h, err := remote.NewHandler(remote.HandlerConfig{Registry: reg, Secret: c.Secret, Logger: c.Logger})
	if err != nil {
		return err
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Ready while its Redis answers: every operation reads or writes the
	// sandbox accounts' state there.
	ready := []api.ReadyCheck{{Name: "redis", Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}}
	var g startstop.Group
	if c.MetricsAddr != "" {
		g.Add("metrics server", OpsServer(c.MetricsAddr, metrics, ready, c.Logger))
	}
	g.Add("provider protocol", startstop.NewHTTPServer("provider protocol", c.Addr, "choose another address with --http-addr", h, c.Logger))
	return g.Run(ctx, nil)
}
