package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/webhooks"
)

// Config configures the API server. Zero fields take the documented defaults.
type Config struct {
	// Store, Registry, Messages and Connections are required.
	Store       Store
	Registry    *operations.Registry
	Messages    Messenger
	Connections Connections
	// Ready are the checks of GET /readyz.
	Ready []ReadyCheck
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
	SandboxAccount func(ctx context.Context, org, integration, username string) (any, error)
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

	// KeyLimit limits each API key on the customer API (tokens exchanged
	// for a key share its bucket; a user's tokens share the user's).
	// Default 100 requests/s, bursts of 200. NoLimit turns it off.
	KeyLimit Limit
	// ClientLimit limits each client address (IPv4 address, IPv6 /64) on the
	// end user's endpoints, the hosted page and the token endpoint. Default
	// 20 requests/s, bursts of 40. NoLimit turns it off.
	ClientLimit Limit
	// ClaimGuessLimit limits claims with a wrong code or an unknown link per
	// client address (claim-code guessing), on top of the store's per-link
	// counter. Only failures count, so many end users behind one NAT are
	// not held back. Default 10 per minute, bursts of 10. NoLimit turns it
	// off.
	ClaimGuessLimit Limit
	// LoginFailureLimit limits failed password-grant logins per user and
	// client address: one address guessing one user's password is stopped
	// without locking the user out for everyone else. Default 5 per minute,
	// bursts of 10. NoLimit turns it off.
	LoginFailureLimit Limit
	// UserLoginFailureLimit is the ceiling of failed password-grant logins
	// per user across every address, much higher than LoginFailureLimit, so
	// that many addresses together cannot guess at will. Default 100 per
	// hour, bursts of 100. NoLimit turns it off.
	UserLoginFailureLimit Limit
	// AddressLoginFailureLimit limits failed token-endpoint logins per
	// client address whatever the user or key, so one address cannot spray
	// guesses over many users. Default 30 per minute, bursts of 30. NoLimit
	// turns it off.
	AddressLoginFailureLimit Limit
	// AuthFailureLimit limits requests with an API key or token that is not
	// valid, per client address, on the customer API. Past it, the address
	// gets 429 with Retry-After before its key is even looked at. Default 10
	// per minute, bursts of 20. NoLimit turns it off.
	AuthFailureLimit Limit
	// OperatorFailureLimit is the ceiling of wrong operator keys (the /ops
	// sign-in and bearer key) from every address together, on top of each
	// address's AuthFailureLimit, so that many addresses cannot guess the
	// key at will. Someone spending it keeps the page closed to the
	// operator too until it refills (linkflow status reads the same numbers
	// without it). Default 100 per hour, bursts of 100. NoLimit turns it
	// off.
	OperatorFailureLimit Limit
	// TrustedProxies are CIDRs (or addresses) of the reverse proxies in
	// front of linkflow. Only when the connection comes from one is
	// X-Forwarded-For believed for the client address. Default none.
	TrustedProxies []string
	// TokenTTL is the lifetime of an access token from POST /v1/auth/token.
	// Default 1 hour.
	TokenTTL time.Duration
	// RedirectDelay is how long the hosted page shows a success before it
	// redirects to the link's return URL; a failure stays until the end
	// user chooses Continue. Default 2 seconds.
	RedirectDelay time.Duration
	// OperatorKey, when set (at least 16 characters), serves the
	// operator's read-only page GET /ops and its JSON GET /ops/status to
	// whoever presents it (operator.go); without it they do not exist.
	// Operator computes what they show, and is required with it.
	// OperatorRefresh is how often the page refreshes its numbers. Default
	// 10 seconds.
	OperatorKey     string
	Operator        OperatorView
	OperatorRefresh time.Duration
	// Metrics, when set, records every request (NewMetrics).
	Metrics *Metrics
}

// Server is the HTTP ingress.
type Server struct {
	cfg     Config
	log     *zap.Logger
	mux     *http.ServeMux
	handler http.Handler
	routes  []string
	// corsRoutes are the end user's endpoints and their preflights.
	corsRoutes map[string]bool
	// readyDetail has /readyz say why a check fails (Health's, on the
	// metrics address).
	readyDetail bool

	trustedProxies []netip.Prefix
}

// New returns a server with cfg's defaults filled in.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Registry == nil || cfg.Messages == nil || cfg.Connections == nil {
		return nil, errors.New("api: Store, Registry, Messages and Connections are required")
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
	cfg.KeyLimit = cfg.KeyLimit.orDefault(Limit{Rate: 100, Burst: 200})
	cfg.ClientLimit = cfg.ClientLimit.orDefault(Limit{Rate: 20, Burst: 40})
	cfg.ClaimGuessLimit = cfg.ClaimGuessLimit.orDefault(Limit{Rate: 10.0 / 60, Burst: 10})
	cfg.LoginFailureLimit = cfg.LoginFailureLimit.orDefault(Limit{Rate: 5.0 / 60, Burst: 10})
	cfg.UserLoginFailureLimit = cfg.UserLoginFailureLimit.orDefault(Limit{Rate: 100.0 / 3600, Burst: 100})
	cfg.AddressLoginFailureLimit = cfg.AddressLoginFailureLimit.orDefault(Limit{Rate: 30.0 / 60, Burst: 30})
	cfg.AuthFailureLimit = cfg.AuthFailureLimit.orDefault(Limit{Rate: 10.0 / 60, Burst: 20})
	cfg.OperatorFailureLimit = cfg.OperatorFailureLimit.orDefault(Limit{Rate: 100.0 / 3600, Burst: 100})
	cfg.TokenTTL = cmp.Or(cfg.TokenTTL, time.Hour)
	cfg.RedirectDelay = cmp.Or(cfg.RedirectDelay, 2*time.Second)
	cfg.OperatorRefresh = cmp.Or(cfg.OperatorRefresh, 10*time.Second)
	proxies, err := parseCIDRs(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("api: TrustedProxies: %w", err)
	}
	if _, err := url.Parse(cfg.PublicURL); err != nil {
		return nil, fmt.Errorf("api: PublicURL: %w", err)
	}
	if err := checkOperator(cfg); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("api"), mux: http.NewServeMux(), trustedProxies: proxies,
		corsRoutes: map[string]bool{}}
	if strings.HasPrefix(cfg.PublicURL, "https://") && len(proxies) == 0 {
		// linkflow serves plain HTTP: an https public URL means a proxy.
		s.log.Warn("the public URL is https, but no trusted proxy is set: every client counts as the proxy's " +
			"address in the per-address rate limits, so one abuser's limit is everyone's; set the trusted proxies")
	}
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
	s.mux.HandleFunc(pattern, s.checkParams(pattern, h))
}

// handleCORS registers an end user's endpoint and its CORS preflight: CORS
// on every answer, the refusal of an unknown query parameter included.
func (s *Server) handleCORS(pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, cors(s.checkParams(pattern, h)))
	_, path, _ := strings.Cut(pattern, " ")
	s.handle(http.MethodOptions+" "+path, preflight)
	s.corsRoutes[pattern], s.corsRoutes[http.MethodOptions+" "+path] = true, true
}

func (s *Server) registerRoutes() {
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	s.handle("GET /openapi.yaml", s.openAPI)

	s.handle("POST /v1/auth/token", s.token)

	s.handle("POST /v1/links", s.authenticated(linkflow.ScopeLinksWrite, s.createLink))
	s.handle("GET /v1/links", s.authenticated(linkflow.ScopeLinksRead, s.listLinks))
	s.handle("GET /v1/links/{linkId}", s.authenticated(linkflow.ScopeLinksRead, s.getLink))
	s.handle("POST /v1/links/{linkId}/cancel", s.authenticated(linkflow.ScopeLinksWrite, s.cancelLink))
	s.handle("GET /v1/links/{linkId}/trace", s.authenticated(linkflow.ScopeLinksRead, s.linkTrace))
	s.handle("GET /v1/providers", s.authenticated("", s.providers))
	s.registerConnectionRoutes()

	// The end user's endpoints, authenticated by the claim code: CORS for
	// browsers and app SDKs, and limits per client address.
	s.handleCORS("POST /v1/links/{linkId}/claim", s.claim)
	s.handleCORS("GET /v1/links/{linkId}/session", s.session)
	s.handleCORS("POST /v1/links/{linkId}/input", s.input)
	s.handleCORS("POST /v1/links/{linkId}/decline", s.declineLink)

	// The hosted page.
	s.handle("GET /link/{linkId}", s.hostedPage)
	s.handle("POST /link/{linkId}/login", s.hostedLogin)
	s.handle("POST /link/{linkId}/mfa", s.hostedMFA)
	s.handle("POST /link/{linkId}/decline", s.hostedDecline)

	// The web drop-in's script.
	s.handle("GET /sdk/link.js", s.sdkScript)
	s.handle("GET /sdk/{version}/link.js", s.sdkScript)

	if s.cfg.SandboxAccount != nil {
		s.handle("GET /v1/sandbox/accounts/{integrationId}/{username}", s.authenticated(linkflow.ScopeLinksRead, s.sandboxAccount))
	}
	if s.cfg.Webhooks != nil {
		s.registerWebhookRoutes()
	}
	if s.cfg.OperatorKey != "" {
		s.registerOperatorRoutes()
	}
	s.mux.HandleFunc(unmatched, s.notFound)
}

// unmatched is the pattern of what no route serves (notFound).
const unmatched = "/"

// notFound answers what no route matched: 405 with Allow when the path
// exists with other methods, 404 otherwise.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		if m == r.Method {
			continue
		}
		if _, pattern := s.mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host}); pattern != "" && pattern != "/" {
			allow = append(allow, m)
			if m == http.MethodGet && r.Method != http.MethodHead {
				allow = append(allow, http.MethodHead) // net/http serves HEAD wherever GET is
			}
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, linkflow.Errorf(linkflow.EMethodNotAllowed, "%s is not allowed on %s.", r.Method, r.URL.Path))
		return
	}
	s.writeError(w, r, linkflow.Errorf(linkflow.ENotFound, "No such endpoint: %s %s.", r.Method, r.URL.Path))
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// PublicURLOf is the URL end users reach a server listening on addr at when
// no public URL is configured: the listen address itself, with localhost
// for an address that listens on every interface.
func PublicURLOf(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}).String()
}
