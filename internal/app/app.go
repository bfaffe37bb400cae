// Package app builds a linkflow process from a Config that cmd/linkflow
// fills from flags: it connects to Redis and NATS (waiting for them, and
// saying on /readyz what it waits for), builds the parts every role shares
// (the store, the integrations, the outbox publisher), and assembles the
// role's services in their one order.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/internal/redact"
	"github.com/linkflow/linkflow/internal/startstop"
	"github.com/linkflow/linkflow/monitor"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/remote"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/workflow"
)

// Config is what a process connects to. Zero fields take the defaults
// documented on each.
type Config struct {
	// Logger is required.
	Logger *zap.Logger
	// Keyring seals secrets at rest. Required.
	Keyring *store.Keyring
	// RedisURL, RedisCluster and RedisPrefix say where the state is
	// (store.DialRedis, store.Config.Prefix).
	RedisURL     string
	RedisCluster bool
	RedisPrefix  string
	// NATS says how to reach NATS and which streams to ensure (Logger and
	// Waiting are filled here).
	NATS outbox.ConnectConfig
	// StartupTimeout bounds the wait for Redis and NATS. Default 2 minutes.
	StartupTimeout time.Duration
	// MetricsAddr serves /metrics, pprof, /healthz and /readyz from the
	// start of Connect; empty: off.
	MetricsAddr string
	// Sandbox, when not nil, registers the sandbox integrations (its Logger
	// is filled here, and its Store unless set: the Redis store).
	Sandbox *sandbox.Config
	// RemoteProviders are base URLs of remote integrations, RemoteToken the
	// bearer token sent to them.
	RemoteProviders []string
	RemoteToken     string
	// Flag names the flag of a setting (a Config field's name, or an
	// outbox.ConnectConfig field's as "NATS.<field>") in errors. Default:
	// the setting's name.
	Flag func(setting string) string
}

// Process is a connected process: its connections and the parts its roles
// share.
type Process struct {
	// ready are the readiness checks, shared by every probe of the process.
	ready     []api.ReadyCheck
	Log       *zap.Logger
	RDB       redis.UniversalClient
	Store     *store.Store
	NC        *nats.Conn
	JS        jetstream.JetStream
	Registry  *operations.Registry
	Sandbox   *sandbox.Sandbox
	Publisher *outbox.Publisher
	Notifier  *outbox.Notifier
	Metrics   *prometheus.Registry

	cfg Config
	// apiRDB is the API's own Redis client (apiServer); nil without one.
	apiRDB  redis.UniversalClient
	ops     *startstop.HTTPServer
	startup *api.Readiness
}

// Connect connects a process and builds its shared parts. When it fails,
// what it opened is closed.
//
// It waits, up to --startup-timeout, for Redis and NATS to answer and for
// JetStream to take the streams, both at once: a fleet may start before
// its servers, or with them. Meanwhile the metrics address already serves
// /healthz, and /readyz names what the process waits for. A configuration
// no wait heals (a malformed URL, a refused password, a missing TLS file)
// fails at once, naming the flag to fix.
func Connect(ctx context.Context, c Config) (_ *Process, err error) {
	if c.Logger == nil || c.Keyring == nil {
		return nil, errors.New("app: Logger and Keyring are required")
	}
	if c.Flag == nil {
		c.Flag = func(s string) string { return s }
	}
	if c.StartupTimeout <= 0 {
		c.StartupTimeout = 2 * time.Minute
	}
	log := c.Logger
	d := &Process{Log: log, Metrics: prometheus.NewRegistry(), cfg: c, startup: api.NewReadiness("redis", "nats", "streams")}
	// go_build_info names the module and its version: dashboards pick
	// linkflow's processes out of a job that scrapes others too.
	d.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.RDB, err = store.DialRedis(c.RedisURL, c.RedisCluster); err != nil {
		return nil, fmt.Errorf("%w: fix %s", err, c.Flag("RedisURL"))
	}
	// This client carries no go-redis hook: with one, the store's
	// auto-pipeliner reads the goroutine id of every call that waits for
	// its batch (runtime.Stack, under a process-wide lock), about a third
	// of a worker's CPU. The API has a client of its own that does (apiServer).
	if d.Store, err = store.New(store.Config{Redis: d.RDB, Keyring: c.Keyring, Prefix: c.RedisPrefix, FullDuplex: true}); err != nil {
		return nil, err
	}
	if c.MetricsAddr != "" {
		// The probes answer while the process waits; Close stops the server
		// last.
		d.ops = OpsServer(c.MetricsAddr, d.Metrics, d.startup.Checks(), log)
		if err := d.ops.Start(ctx); err != nil {
			return nil, err
		}
	}

	wctx, cancel := context.WithTimeout(ctx, c.StartupTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var redisErr, natsErr error
	wg.Go(func() {
		if redisErr = store.WaitRedis(wctx, d.RDB, log, func(why error) { d.startup.Waiting("redis", why) }); redisErr != nil {
			cancel()
		}
	})
	wg.Go(func() {
		nc := c.NATS
		nc.Logger, nc.Waiting = log, d.startup.Waiting
		d.NC, d.JS, natsErr = outbox.Connect(wctx, nc)
		if natsErr != nil {
			cancel()
		}
	})
	wg.Wait()
	if err := startupError(ctx, c, redisErr, natsErr); err != nil {
		return nil, err
	}
	warnEviction(ctx, d.Store, log)
	if d.Registry, d.Sandbox, err = buildRegistry(ctx, c, d.RDB); err != nil {
		return nil, err
	}
	if d.Publisher, err = outbox.NewPublisher(outbox.PublisherConfig{JetStream: d.JS, Store: d.Store, Logger: log}); err != nil {
		return nil, err
	}
	d.Notifier = outbox.NewNotifier(d.NC, log)
	d.ready = loggedChecks(d.readyChecks(), log)
	d.startup.Ready(d.ready)
	return d, nil
}

// warnEviction warns, at startup, of each Redis server that would evict
// keys when full (linkflow status and the operator's page say it too). A
// look that fails is said at info: it stops nothing.
func warnEviction(ctx context.Context, st *store.Store, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	warnings, err := st.EvictionWarnings(ctx)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		log.Info("could not check that Redis keeps its keys when full", zap.Error(err))
	}
}

// startupError words what stopped connect's wait: the error that is not
// the other wait's cancellation, with the flag to fix or the time waited.
func startupError(ctx context.Context, c Config, redisErr, natsErr error) error {
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
		if errors.Is(redisErr, store.ErrRedisConfig) {
			redisErr = fmt.Errorf("%w: fix %s", redisErr, c.Flag("RedisURL"))
		}
		errs = append(errs, fmt.Errorf("redis at %s: %w", redact.URLs(c.RedisURL), redisErr))
	}
	if natsErr != nil {
		var ce *outbox.ConfigError
		if errors.As(natsErr, &ce) {
			natsErr = fmt.Errorf("%w: fix %s", ce.Err, c.Flag("NATS."+ce.Field))
		}
		errs = append(errs, fmt.Errorf("nats at %s: %w", redact.URLs(c.NATS.URL), natsErr))
	}
	err := errors.Join(errs...)
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("gave up after %s %s: %w", c.Flag("StartupTimeout"), c.StartupTimeout, err)
	}
	return err
}

// Close closes the process's connections and stops its metrics server.
func (d *Process) Close() {
	if d.Registry != nil {
		d.Registry.Close(context.Background())
	}
	if d.NC != nil {
		// Acks and naks are fire-and-forget publishes: flush them before the
		// process goes, or a hand-back at shutdown is lost and its message
		// waits out the ack deadline. (Drain would return before flushing.)
		_ = d.NC.FlushTimeout(5 * time.Second)
		d.NC.Close()
	}
	if d.RDB != nil {
		_ = d.RDB.Close()
	}
	if d.apiRDB != nil {
		_ = d.apiRDB.Close()
	}
	if d.ops != nil {
		d.ops.Stop()
	}
	_ = d.Log.Sync()
}

// buildRegistry registers the sandbox (unless disabled) and the remote
// integrations.
func buildRegistry(ctx context.Context, c Config, rdb redis.UniversalClient) (*operations.Registry, *sandbox.Sandbox, error) {
	reg := operations.NewRegistry(nil)
	var sb *sandbox.Sandbox
	if c.Sandbox != nil {
		var err error
		sc := *c.Sandbox
		sc.Logger = c.Logger
		if sc.Store == nil {
			sc.Store = sandbox.NewRedisStore(rdb)
		}
		sb, err = sandbox.New(sc)
		if err != nil {
			return nil, nil, err
		}
		if err := sandbox.Register(reg, sb); err != nil {
			return nil, nil, err
		}
	}
	for _, u := range c.RemoteProviders {
		if _, err := remote.Register(ctx, reg, remote.RegisterConfig{Config: remote.Config{BaseURL: u, Secret: c.RemoteToken,
			Logger: c.Logger.Named("remote")}}); err != nil {
			return nil, nil, fmt.Errorf("remote provider %s: %w", redact.URLs(u), err)
		}
	}
	return reg, sb, nil
}

// readyChecks are what GET /readyz checks: Redis answers, NATS is
// connected, linkflow's streams exist.
func (d *Process) readyChecks() []api.ReadyCheck {
	return []api.ReadyCheck{
		{Name: "redis", Check: d.Store.Ping},
		{Name: "nats", Check: func(context.Context) error {
			if st := d.NC.Status(); st != nats.CONNECTED {
				return fmt.Errorf("not connected (%s)", st)
			}
			return nil
		}},
		{Name: "streams", Check: func(ctx context.Context) error { return outbox.CheckStreams(ctx, d.JS) }},
	}
}

// loggedChecks logs each check's change between passing and failing, once per
// process whichever probe asked (the API's /readyz, the metrics address's):
// a warning with why it fails, and a line when it passes again. Nothing is
// logged while a check stays as it was.
func loggedChecks(checks []api.ReadyCheck, log *zap.Logger) []api.ReadyCheck {
	out := make([]api.ReadyCheck, len(checks))
	for i, c := range checks {
		var mu sync.Mutex
		failing := false
		out[i] = api.ReadyCheck{Name: c.Name, Check: func(ctx context.Context) error {
			err := c.Check(ctx)
			if ctx.Err() != nil && err != nil {
				return err // the probe gave up: no verdict on the dependency
			}
			mu.Lock()
			was := failing
			failing = err != nil
			mu.Unlock()
			switch {
			case err != nil && !was:
				log.Warn("readiness check failing", zap.String("check", c.Name), zap.Error(err))
			case err == nil && was:
				log.Info("readiness check passing again", zap.String("check", c.Name))
			}
			return err
		}}
	}
	return out
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
	_ monitor.Store          = (*store.Store)(nil)
)
