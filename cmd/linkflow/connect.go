package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
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
	"github.com/linkflow/linkflow/internal/startstop"
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
	// ops serves the metrics address from the start of connect (nil when
	// off); startup is what its /readyz says until connect is done.
	ops     *startstop.HTTPServer
	startup *startup
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
//
// It waits, up to --startup-timeout, for Redis and NATS to answer and for
// JetStream to take the streams, both at once: a fleet may start before
// its servers, or with them. Meanwhile the metrics address already serves
// /healthz, and /readyz names what the process waits for. A configuration
// no wait heals (a malformed URL, a refused password, a missing TLS file)
// fails at once, naming the flag to fix.
func connect(ctx context.Context, c *common, log *zap.Logger, kr *store.Keyring) (_ *deps, err error) {
	d := &deps{log: log, metrics: prometheus.NewRegistry(), startup: newStartup()}
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
		return nil, fmt.Errorf("%w: fix %s", err, flagRef("redis-url"))
	}
	if d.store, err = store.New(store.Config{Redis: d.rdb, Keyring: kr, Prefix: c.redisPrefix}); err != nil {
		return nil, err
	}
	if c.metricsAddr != "" {
		// The probes answer while the process waits. The server joins no
		// group: assemble must not start a second one on the same address,
		// and close stops it last.
		d.ops = newOpsServer(c.metricsAddr, d.metrics, d.startup.readyChecks(), log)
		if err := d.ops.Start(ctx); err != nil {
			return nil, err
		}
		c.metricsAddr = ""
	}

	wctx, cancel := context.WithTimeout(ctx, c.startupTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var redisErr, natsErr error
	wg.Go(func() {
		if redisErr = waitRedis(wctx, d.rdb, log, d.startup.waiting); redisErr != nil {
			cancel()
		}
	})
	wg.Go(func() {
		d.nc, d.js, natsErr = outbox.Connect(wctx, outbox.ConnectConfig{
			URL: c.natsURL, CredsFile: c.natsCreds, CAFile: c.natsCA, CertFile: c.natsCert, KeyFile: c.natsKey,
			Streams: outbox.StreamConfig{Replicas: c.streamReplicas}, Logger: log, Waiting: d.startup.waiting,
		})
		if natsErr != nil {
			cancel()
		}
	})
	wg.Wait()
	if err := startupError(ctx, c, redisErr, natsErr); err != nil {
		return nil, err
	}
	if d.reg, d.sandbox, err = buildRegistry(ctx, c, d.rdb, log); err != nil {
		return nil, err
	}
	if d.pub, err = outbox.NewPublisher(outbox.PublisherConfig{JetStream: d.js, Store: d.store, Logger: log}); err != nil {
		return nil, err
	}
	d.notify = outbox.NewNotifier(d.nc, log)
	d.startup.ready(d.readyChecks())
	return d, nil
}

// startupError words what stopped connect's wait: the error that is not
// the other wait's cancellation, with the flag to fix or the time waited.
func startupError(ctx context.Context, c *common, redisErr, natsErr error) error {
	if redisErr == nil && natsErr == nil {
		return nil
	}
	// The wait that failed first cancelled the other.
	if redisErr != nil && errors.Is(redisErr, context.Canceled) && natsErr != nil && ctx.Err() == nil {
		redisErr = nil
	}
	if natsErr != nil && errors.Is(natsErr, context.Canceled) && redisErr != nil && ctx.Err() == nil {
		natsErr = nil
	}
	var errs []error
	if redisErr != nil {
		errs = append(errs, fmt.Errorf("redis at %s: %w", redactURLs(c.redisURL), redisErr))
	}
	if natsErr != nil {
		var ce *outbox.ConfigError
		if errors.As(natsErr, &ce) {
			natsErr = fmt.Errorf("%w: fix %s", ce.Err, flagRef(natsFlags[ce.Field]))
		}
		errs = append(errs, fmt.Errorf("nats at %s: %w", redactURLs(c.natsURL), natsErr))
	}
	err := errors.Join(errs...)
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("gave up after --startup-timeout %s: %w", c.startupTimeout, err)
	}
	return err
}

// natsFlags are the flags of outbox.ConnectConfig's fields.
var natsFlags = map[string]string{
	"URL": "nats-url", "CredsFile": "nats-creds", "CAFile": "nats-ca", "CertFile": "nats-cert", "KeyFile": "nats-key",
	"Streams.Replicas": "stream-replicas",
}

// flagRef names a flag and its environment variable.
func flagRef(name string) string {
	if name == "" {
		return "the NATS flags"
	}
	return "--" + name + " (" + envName(name) + ")"
}

// redactURLs hides the passwords of a comma-separated list of URLs.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		raw, scheme := p, strings.Contains(p, "://")
		if !scheme {
			raw = "x://" + p
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil && strings.Contains(p, "@"):
			parts[i] = "(a URL that does not parse)"
		case err == nil && u.User != nil:
			parts[i] = u.Redacted()
			if !scheme {
				parts[i] = strings.TrimPrefix(parts[i], "x://")
			}
		}
	}
	return strings.Join(parts, ",")
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
	if d.ops != nil {
		d.ops.Stop()
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
