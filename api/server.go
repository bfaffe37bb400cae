package api

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/workflow"
)

// Config configures the API server. Zero fields take the documented defaults.
type Config struct {
	// Store, Registry, Publisher, NATS and JetStream are required.
	Store     *store.Store
	Registry  *operations.Registry
	Publisher *workflow.Publisher
	NATS      *nats.Conn
	JetStream jetstream.JetStream
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// PublicURL is where end users reach linkflow; appClipUrl is built from
	// it. Default http://localhost:8080.
	PublicURL string
	// Dev relaxes rules for a laptop: http return URLs, the sandbox inspection
	// endpoint.
	Dev bool
	// SandboxAccount, when set (dev), serves
	// GET /v1/sandbox/accounts/{integrationId}/{username}: a sandbox account's
	// state and write log.
	SandboxAccount func(ctx context.Context, integration, username string) (any, error)
	// Webhooks, when set, serves the webhook delivery log, redelivery, failed
	// deliveries and their replay, and the event log (GET /v1/events).
	Webhooks *webhooks.Service
	// DefaultExpiry of a link without expiresIn. Default 4 hours.
	DefaultExpiry time.Duration
	// MaxExpiry caps expiresIn. Default 30 days.
	MaxExpiry time.Duration
	// MaxBodyBytes caps request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// MaxOperations caps operations per link. Default 20.
	MaxOperations int
}

// Server is the HTTP ingress.
type Server struct {
	cfg     Config
	log     *zap.Logger
	mux     *http.ServeMux
	handler http.Handler
	routes  []string
}

// New returns a server with cfg's defaults filled in.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Registry == nil || cfg.Publisher == nil || cfg.NATS == nil || cfg.JetStream == nil {
		return nil, errors.New("api: Store, Registry, Publisher, NATS and JetStream are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.PublicURL = strings.TrimRight(cmp.Or(cfg.PublicURL, "http://localhost:8080"), "/")
	cfg.DefaultExpiry = cmp.Or(cfg.DefaultExpiry, 4*time.Hour)
	cfg.MaxExpiry = cmp.Or(cfg.MaxExpiry, 30*24*time.Hour)
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, 1<<20)
	cfg.MaxOperations = cmp.Or(cfg.MaxOperations, 20)
	s := &Server{cfg: cfg, log: cfg.Logger.Named("api"), mux: http.NewServeMux()}
	s.registerRoutes()
	s.handler = s.withRequest(s.mux)
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes lists the registered routes ("METHOD /path"), for the OpenAPI test.
func (s *Server) Routes() []string { return s.routes }

func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, h)
}

func (s *Server) registerRoutes() {
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)

	s.handle("POST /v1/links", s.authenticated(store.ScopeLinksWrite, s.createLink))
	s.handle("GET /v1/links", s.authenticated(store.ScopeLinksRead, s.listLinks))
	s.handle("GET /v1/links/{linkId}", s.authenticated(store.ScopeLinksRead, s.getLink))
	s.handle("POST /v1/links/{linkId}/cancel", s.authenticated(store.ScopeLinksWrite, s.cancelLink))
	s.handle("GET /v1/providers", s.authenticated("", s.providers))

	s.handle("POST /v1/links/{linkId}/claim", s.claim)
	s.handle("GET /v1/links/{linkId}/session", s.session)
	s.handle("POST /v1/links/{linkId}/input", s.input)

	if s.cfg.SandboxAccount != nil {
		s.handle("GET /v1/sandbox/accounts/{integrationId}/{username}", s.authenticated(store.ScopeLinksRead, s.sandboxAccount))
	}
	if s.cfg.Webhooks != nil {
		s.registerWebhookRoutes()
	}
	s.mux.HandleFunc("/", s.notFound)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, linkflow.Errorf(linkflow.ENotFound, "No such endpoint: %s %s.", r.Method, r.URL.Path))
}

func (s *Server) now() time.Time { return s.cfg.Now() }
