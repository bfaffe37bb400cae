package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/remote"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/workflow"
)

// deps are the connections and shared parts every server role uses.
type deps struct {
	log     *zap.Logger
	rdb     redis.UniversalClient
	store   *store.Store
	nc      *nats.Conn
	js      jetstream.JetStream
	reg     *operations.Registry
	sandbox *sandbox.Sandbox
	pub     *outbox.Publisher
	notify  *outbox.Notifier
	metrics *prometheus.Registry
}

func newLogger(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	cfg := zap.NewProductionConfig()
	if format == "console" {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	return cfg.Build()
}

// connect builds the shared parts from the common flags. keyring may be nil
// (then --encryption-keys is required). When it fails, what it opened is
// closed.
func connect(ctx context.Context, c *common, log *zap.Logger, kr *store.Keyring) (_ *deps, err error) {
	d := &deps{log: log, metrics: prometheus.NewRegistry()}
	d.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if kr == nil {
		if c.encryptionKeys == "" {
			return nil, errors.New("--encryption-keys (LINKFLOW_ENCRYPTION_KEYS) is required: generate one with `linkflow keys generate`")
		}
		if kr, err = store.ParseKeyring(c.encryptionKeys); err != nil {
			return nil, err
		}
	}
	if d.rdb, err = store.DialRedis(c.redisURL, c.redisCluster); err != nil {
		return nil, err
	}
	if d.store, err = store.New(store.Config{Redis: d.rdb, Keyring: kr, Prefix: c.redisPrefix}); err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.store.Ping(pingCtx); err != nil {
		return nil, fmt.Errorf("redis at %s: %w", c.redisURL, err)
	}
	d.nc, err = nats.Connect(c.natsURL, nats.Name("linkflow"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }))
	if err != nil {
		return nil, fmt.Errorf("nats at %s: %w", c.natsURL, err)
	}
	if d.js, err = jetstream.New(d.nc); err != nil {
		return nil, err
	}
	if err := outbox.EnsureStreams(pingCtx, d.js, outbox.StreamConfig{Replicas: c.streamReplicas}); err != nil {
		return nil, err
	}
	if d.reg, d.sandbox, err = buildRegistry(ctx, c, d.rdb, log); err != nil {
		return nil, err
	}
	if d.pub, err = outbox.NewPublisher(outbox.PublisherConfig{JetStream: d.js, Store: d.store, Logger: log}); err != nil {
		return nil, err
	}
	d.notify = outbox.NewNotifier(d.nc, log)
	return d, nil
}

func (d *deps) close() {
	if d.reg != nil {
		d.reg.Close(context.Background())
	}
	if d.nc != nil {
		// Acks and naks are fire-and-forget publishes: flush them before the
		// process goes, or a hand-back at shutdown is lost and its message
		// waits out the ack deadline. (Drain would return before flushing.)
		_ = d.nc.FlushTimeout(5 * time.Second)
		d.nc.Close()
	}
	if d.rdb != nil {
		_ = d.rdb.Close()
	}
	_ = d.log.Sync()
}

// buildRegistry registers the sandbox (unless disabled) and the remote
// integrations.
func buildRegistry(ctx context.Context, c *common, rdb redis.UniversalClient, log *zap.Logger) (*operations.Registry, *sandbox.Sandbox, error) {
	reg := operations.NewRegistry(nil)
	var sb *sandbox.Sandbox
	if c.sandbox {
		var err error
		sb, err = sandbox.New(sandbox.Config{Store: sandbox.NewRedisStore(rdb), Latency: c.sandboxLatency,
			SlowDelay: time.Duration(c.sandboxSlowMS) * time.Millisecond, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		if err := sandbox.Register(reg, sb); err != nil {
			return nil, nil, err
		}
	}
	for _, u := range strings.Split(c.remote, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if _, err := remote.Register(ctx, reg, remote.RegisterConfig{Config: remote.Config{BaseURL: u, Secret: c.remoteToken}}); err != nil {
			return nil, nil, fmt.Errorf("remote provider %s: %w", u, err)
		}
	}
	return reg, sb, nil
}

// readyChecks are what GET /readyz checks: Redis answers, NATS is
// connected, linkflow's streams exist.
func (d *deps) readyChecks() []api.ReadyCheck {
	return []api.ReadyCheck{
		{Name: "redis", Check: d.store.Ping},
		{Name: "nats", Check: func(context.Context) error {
			if st := d.nc.Status(); st != nats.CONNECTED {
				return fmt.Errorf("not connected (%s)", st)
			}
			return nil
		}},
		{Name: "streams", Check: func(ctx context.Context) error { return outbox.CheckStreams(ctx, d.js) }},
	}
}

// Each package that keeps state declares the small interface it needs, in
// the root package's vocabulary, and does not import store; the store
// implements them all, as checked here, where they are wired together.
var (
	_ api.Store              = (*store.Store)(nil)
	_ connections.Store      = (*store.Store)(nil)
	_ outbox.Store           = (*store.Store)(nil)
	_ workflow.RunStore      = (*store.Store)(nil)
	_ workflow.SweepStore    = (*store.Store)(nil)
	_ webhooks.DispatchStore = (*store.Store)(nil)
	_ webhooks.ServiceStore  = (*store.Store)(nil)
)
