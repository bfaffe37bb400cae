package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/internal/startstop"
	"github.com/linkflow/linkflow/monitor"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/workflow"
)

// Parts says which parts a process runs; nil leaves a part out.
type Parts struct {
	// API serves the HTTP API on APIAddr with API's settings (its
	// dependencies are filled here).
	API     *api.Config
	APIAddr string
	// Worker runs a worker, the sweeper and the outbox relay, with Worker's
	// settings (its dependencies are filled here).
	Worker *workflow.Config
	// Dispatcher runs the webhook dispatcher, with its settings (its
	// dependencies are filled here).
	Dispatcher *webhooks.Config
}

// Assemble builds a process's services in their one order: the outbox
// publisher before anything that publishes, the worker with its sweeper
// and relay, the dispatcher, and the HTTP API last, so that it takes
// requests only once everything behind it runs, and stops taking them
// first. (The metrics server already runs, from Connect.)
func (d *Process) Assemble(p Parts) (*startstop.Group, error) {
	ss := &startstop.Group{}
	if p.API != nil || p.Worker != nil {
		ss.Add("outbox publisher", d.Publisher)
	}
	if p.Worker != nil {
		cfg := *p.Worker
		cfg.Store, cfg.Registry, cfg.JetStream, cfg.NATS, cfg.Publisher = d.Store, d.Registry, d.JS, d.NC, d.Publisher
		metrics := workflow.NewMetrics(d.Metrics)
		cfg.Logger, cfg.Metrics = d.Log, metrics
		w, err := workflow.NewWorker(cfg)
		if errors.Is(err, workflow.ErrUnknownIntegration) {
			return nil, fmt.Errorf("%w: fix %s or %s", err, d.cfg.Flag("Worker.Integrations"), d.cfg.Flag("Worker.IntegrationLimits"))
		}
		if err != nil {
			return nil, err
		}
		sw, err := workflow.NewSweeper(workflow.SweeperConfig{Store: d.Store, Publisher: d.Publisher, Logger: d.Log, Metrics: metrics})
		if err != nil {
			return nil, err
		}
		relay, err := outbox.NewRelay(outbox.RelayConfig{Store: d.Store, Publisher: d.Publisher, Logger: d.Log})
		if err != nil {
			return nil, err
		}
		ss.Add("worker", w)
		ss.Add("sweeper", sw)
		ss.Add("outbox relay", relay)
		// Workers export the deployment's backlog (every worker the same).
		backlog, err := monitor.New(monitor.Config{Store: d.Store, JetStream: d.JS, Logger: d.Log})
		if err != nil {
			return nil, err
		}
		d.Metrics.MustRegister(backlog.Collector())
	}
	if p.Dispatcher != nil {
		cfg := *p.Dispatcher
		cfg.Store, cfg.JetStream, cfg.Logger, cfg.Metrics = d.Store, d.JS, d.Log, d.Metrics
		disp, err := webhooks.NewDispatcher(cfg)
		if err != nil {
			return nil, err
		}
		ss.Add("dispatcher", disp)
	}
	if p.API != nil {
		srv, conns, err := d.apiServer(*p.API)
		if err != nil {
			return nil, err
		}
		// Stopped after the API: a refresh or revocation the provider made
		// for a request that was cut off is still recorded in Redis.
		ss.Add("connections", conns)
		ss.Add("http api", startstop.NewHTTPServer("http api", p.APIAddr, "choose another address with --http-addr", srv, d.Log))
	}
	return ss, nil
}

// apiRedisTimeout bounds each Redis call of the API (retries, dials and the
// wait for a pooled connection included): while Redis is down or hangs, a
// request is answered 503 within it, not after go-redis's own timeouts and
// retries (5 s dials, 3 s reads, 3 retries). A call takes a few
// milliseconds otherwise.
const apiRedisTimeout = 2 * time.Second

// apiStore is the API's own store, on a Redis client of its own whose
// calls store.UnavailableHook bounds and marks (for 503 rather than 500).
// The roles that do not answer requests keep their client free of hooks:
// a hook costs every call of the client's auto-pipeliner (see Connect).
// So the API's store does not auto-pipeline: each request's calls take
// round trips of their own (end to end, 990 -> 1,120 links/s and the dev
// process's CPU per link 870-1,000 -> 790-870 µs, alternating runs).
func (d *Process) apiStore() (*store.Store, error) {
	rdb, err := store.DialRedis(d.cfg.RedisURL, d.cfg.RedisCluster)
	if err != nil {
		return nil, err
	}
	d.apiRDB = rdb
	rdb.AddHook(store.UnavailableHook{Timeout: apiRedisTimeout})
	return store.New(store.Config{Redis: rdb, Keyring: d.cfg.Keyring, Prefix: d.cfg.RedisPrefix, NoAutoPipeline: true})
}

func (d *Process) apiServer(cfg api.Config) (*api.Server, *connections.Service, error) {
	st, err := d.apiStore()
	if err != nil {
		return nil, nil, err
	}
	conns, err := connections.New(connections.Config{Store: st, Providers: d.Registry, Logger: d.Log})
	if err != nil {
		return nil, nil, err
	}
	operator, err := monitor.New(monitor.Config{Store: st, JetStream: d.JS, Logger: d.Log})
	if err != nil {
		return nil, nil, err
	}
	cfg.Store, cfg.Registry, cfg.Connections, cfg.Logger = st, d.Registry, conns, d.Log
	cfg.Messages = outbox.Messenger{Publisher: d.Publisher, Notifier: d.Notifier}
	cfg.Ready = d.ready
	cfg.Webhooks = webhooks.NewService(webhooks.ServiceConfig{Store: st, Feed: outbox.NewFeed(d.JS), Logger: d.Log, Notifier: d.Notifier})
	cfg.Operator = operator
	cfg.Metrics = api.NewMetrics(d.Metrics)
	if cfg.Dev && d.Sandbox != nil {
		cfg.SandboxAccount = func(ctx context.Context, org, integration, username string) (any, error) {
			return d.Sandbox.Account(ctx, org, integration, username)
		}
	}
	srv, err := api.New(cfg)
	return srv, conns, err
}

// opsHandler is what a process serves on its metrics address, never on the
// API's: Prometheus /metrics, pprof, and the probes /healthz and /readyz
// (for roles without an API of their own; the API serves them too).
func opsHandler(reg *prometheus.Registry, ready []api.ReadyCheck) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	health := api.Health(ready)
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	return mux
}

// OpsServer is the server of opsHandler on addr, for a process that does not
// Connect (the sandbox provider).
func OpsServer(addr string, reg *prometheus.Registry, ready []api.ReadyCheck, log *zap.Logger) *startstop.HTTPServer {
	return startstop.NewHTTPServer("metrics", addr, "choose another address with --metrics-addr, or empty to turn them off",
		opsHandler(reg, ready), log)
}
