package teststack

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/internal/startstop"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/workflow"
)

// StackOptions tune an in-process linkflow for a test. Every hook may be nil.
type StackOptions struct {
	// Logger receives every component's logs; default zaptest's.
	Logger *zap.Logger
	// NoWorker and NoDispatcher leave those roles out.
	NoWorker     bool
	NoDispatcher bool
	// Sandbox tunes the sandbox before it is registered.
	Sandbox func(*sandbox.Config)
	// Registry adds integrations after the sandbox's.
	Registry func(*operations.Registry)
	// Store, Worker, Dispatcher and API tune each component's config.
	Store      func(*store.Config)
	Worker     func(*workflow.Config)
	Dispatcher func(*webhooks.Config)
	API        func(*api.Config)
}

// Stack is linkflow running in the test process against a real redis-server
// and a real embedded JetStream: the API on an httptest server, a worker, the
// sweeper and the webhook dispatcher, with an organization ready to use.
type Stack struct {
	URL        string
	Redis      redis.UniversalClient
	RedisEnv   *testenv.RedisEnv
	NATSURL    string
	NC         *nats.Conn
	JS         jetstream.JetStream
	Keyring    *store.Keyring
	Store      *store.Store
	Registry   *operations.Registry
	Sandbox    *sandbox.Sandbox
	Publisher  *outbox.Publisher
	Notifier   *outbox.Notifier
	Relay      *outbox.Relay
	Worker     *workflow.Worker
	Sweeper    *workflow.Sweeper
	Dispatcher *webhooks.Dispatcher
	API        *api.Server
	Metrics    *prometheus.Registry

	OrgID         string
	APIKey        string
	WebhookSecret string
}

// NewStack starts linkflow for the test; everything stops when it ends.
func NewStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	log := opts.Logger
	if log == nil {
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	s := &Stack{Metrics: prometheus.NewRegistry()}
	s.Redis, s.RedisEnv = testenv.Redis(t)
	s.NATSURL, s.NC, s.JS = testenv.NATS(t)
	ctx := context.Background()

	var err error
	if s.Keyring, err = store.ParseKeyring(store.GenerateKey("test1")); err != nil {
		t.Fatal(err)
	}
	scfg := store.Config{Redis: s.Redis, Keyring: s.Keyring, Prefix: s.RedisEnv.Prefix}
	if opts.Store != nil {
		opts.Store(&scfg)
	}
	if s.Store, err = store.New(scfg); err != nil {
		t.Fatal(err)
	}
	if err := outbox.EnsureStreams(ctx, s.JS, outbox.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	s.Registry = operations.NewRegistry(scfg.Now)
	sbcfg := sandbox.Config{Store: sandbox.NewRedisStore(s.Redis), Logger: log, SlowDelay: 2 * time.Second}
	if opts.Sandbox != nil {
		opts.Sandbox(&sbcfg)
	}
	if s.Sandbox, err = sandbox.New(sbcfg); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Register(s.Registry, s.Sandbox); err != nil {
		t.Fatal(err)
	}
	if opts.Registry != nil {
		opts.Registry(s.Registry)
	}
	if s.Publisher, err = outbox.NewPublisher(outbox.PublisherConfig{JetStream: s.JS, Store: s.Store, Logger: log}); err != nil {
		t.Fatal(err)
	}
	start(t, ctx, s.Publisher)
	s.Notifier = outbox.NewNotifier(s.NC, log)

	if !opts.NoWorker {
		wcfg := workflow.Config{Store: s.Store, Registry: s.Registry, JetStream: s.JS, NATS: s.NC,
			Publisher: s.Publisher, Logger: log, Metrics: workflow.NewMetrics(s.Metrics),
			ShutdownGrace: 5 * time.Second}
		if opts.Worker != nil {
			opts.Worker(&wcfg)
		}
		if s.Worker, err = workflow.NewWorker(wcfg); err != nil {
			t.Fatal(err)
		}
		start(t, ctx, s.Worker)
		if s.Sweeper, err = workflow.NewSweeper(workflow.SweeperConfig{Store: s.Store, Publisher: s.Publisher,
			Logger: log, Interval: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		start(t, ctx, s.Sweeper)
		if s.Relay, err = outbox.NewRelay(outbox.RelayConfig{Store: s.Store, Publisher: s.Publisher, Logger: log,
			Interval: 100 * time.Millisecond, Age: time.Second}); err != nil {
			t.Fatal(err)
		}
		start(t, ctx, s.Relay)
	}
	if !opts.NoDispatcher {
		dcfg := webhooks.Config{Store: s.Store, JetStream: s.JS, Logger: log, AllowPrivate: true,
			Schedule: []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}}
		if opts.Dispatcher != nil {
			opts.Dispatcher(&dcfg)
		}
		if s.Dispatcher, err = webhooks.NewDispatcher(dcfg); err != nil {
			t.Fatal(err)
		}
		start(t, ctx, s.Dispatcher)
	}
	conns, err := connections.New(connections.Config{Store: s.Store, Providers: s.Registry, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	acfg := api.Config{Store: s.Store, Registry: s.Registry, Logger: log, Dev: true,
		Messages:    outbox.Messenger{Publisher: s.Publisher, Notifier: s.Notifier},
		Connections: conns,
		Ready: []api.ReadyCheck{{Name: "redis", Check: s.Store.Ping},
			{Name: "streams", Check: func(ctx context.Context) error { return outbox.CheckStreams(ctx, s.JS) }}},
		SandboxAccount: func(ctx context.Context, org, integration, username string) (any, error) {
			return s.Sandbox.Account(ctx, org, integration, username)
		},
		Webhooks: webhooks.NewService(webhooks.ServiceConfig{Store: s.Store, Feed: outbox.NewFeed(s.JS), Logger: log, Notifier: s.Notifier})}
	if opts.API != nil {
		opts.API(&acfg)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	if acfg.PublicURL == "" {
		acfg.PublicURL = srv.URL
	}
	if s.API, err = api.New(acfg); err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s.API
	s.OrgID, s.APIKey, s.WebhookSecret = s.NewOrg(t, "Test organization")
	return s
}

// NewAPI returns another API process of the stack on st (the stack's own
// store when nil), as a second process sharing its Redis and JetStream;
// mod tunes its config.
func (s *Stack) NewAPI(t testing.TB, st *store.Store, mod func(*api.Config)) *api.Server {
	t.Helper()
	if st == nil {
		st = s.Store
	}
	conns, err := connections.New(connections.Config{Store: st, Providers: s.Registry})
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{Store: st, Registry: s.Registry, Connections: conns,
		Messages: outbox.Messenger{Publisher: s.Publisher, Notifier: s.Notifier}}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// start starts a service for the test and stops it when the test ends.
func start(t testing.TB, ctx context.Context, s startstop.Service) {
	t.Helper()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
}

// NewOrg creates another organization with an API key.
func (s *Stack) NewOrg(t testing.TB, name string) (orgID, apiKey, webhookSecret string) {
	t.Helper()
	ctx := context.Background()
	org, err := s.Store.CreateOrg(ctx, "", name, "")
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := s.Store.CreateAPIKey(ctx, org.ID, "test", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return org.ID, key, org.WebhookSecrets[0]
}

// Response is an HTTP response with its body read.
type Response = testenv.Response

// Do sends a request to the stack's API with key as bearer token ("" for
// none); body is marshalled to JSON unless it is a string or []byte.
func (s *Stack) Do(t testing.TB, method, path, key string, body any) *Response {
	t.Helper()
	return testenv.Do(t, method, s.URL+path, key, body)
}
