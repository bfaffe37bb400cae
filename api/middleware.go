package api

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxLogger
	ctxPrincipal
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,128}$`)

// maxSecret bounds a bearer secret: keys and tokens are far shorter.
const maxSecret = 256

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(ctxRequestID).(string)
	return id
}

func reqLog(r *http.Request) *zap.Logger {
	if l, ok := r.Context().Value(ctxLogger).(*zap.Logger); ok {
		return l
	}
	return zap.NewNop()
}

func principal(r *http.Request) *linkflow.Principal {
	p, _ := r.Context().Value(ctxPrincipal).(*linkflow.Principal)
	return p
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// withRequest gives every request an id (the caller's X-Request-Id when it
// looks sane, else a new one), echoed in X-Request-Id; a logger that carries
// it; an access log line and the request metrics (by route, the pattern
// the request matched); and recovery from panics. The query string is not
// logged: it may hold a claim code.
func (s *Server) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = "req_" + strings.ReplaceAll(uuid.NewString(), "-", "")
		}
		w.Header().Set("X-Request-Id", id)
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			// What the API answers is an organization's or an end user's
			// (a link's results, a connection's tokens): no cache keeps it.
			w.Header().Set("Cache-Control", "no-store")
		}
		log := s.log.WithLazy(zap.String("request_id", id))
		ctx := context.WithValue(r.Context(), ctxRequestID, id)
		ctx = context.WithValue(ctx, ctxLogger, log)
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		route := "" // the mux sets r.Pattern when it routes r
		s.cfg.Metrics.begin()
		// Apart from the recovery below, which panics again to abort.
		defer func() {
			if route = cmp.Or(route, r.Pattern); route == "" || route == unmatched {
				route = "unmatched" // the catch-all (notFound)
			}
			s.cfg.Metrics.end(route, rec.status, time.Since(start))
		}()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p) // the server's way to abort a response; not a bug
				}
				log.Error("panic", zap.Any("panic", p), zap.Stack("stack"))
				if rec.status == 0 {
					s.writeError(rec, r, linkflow.Errorf(linkflow.EInternal, "An unexpected error occurred."))
				}
			}
			log.Debug("request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Int("status", rec.status), zap.Duration("took", time.Since(start)))
		}()
		if err := checkQuery(r); err != nil {
			_, pattern := s.mux.Handler(r)
			route = pattern
			switch {
			case lenientQuery[pattern]:
				// The hosted page ignores what it does not read, however
				// long (an end user's browser gets the page, not JSON).
				next.ServeHTTP(rec, r)
				return
			case s.corsRoutes[pattern] && r.Method == http.MethodOptions:
				// A preflight only carries the query of the request it
				// asks for: answered, so that the request gets the refusal.
				preflight(rec, r)
				return
			case s.corsRoutes[pattern]:
				// With CORS headers, or a browser could not read why.
				setCORS(rec.Header())
			}
			s.writeError(rec, r, err)
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// Bounds of a query string: no parameter of the API takes a longer value.
const (
	maxQueryParams = 32
	maxQueryValue  = 1024
)

// checkQuery refuses a query string with too many or too long parameters.
func checkQuery(r *http.Request) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return linkflow.Errorf(linkflow.EBadRequest, "The query string is not valid.")
	}
	n := 0
	for k, vs := range q {
		n += len(vs)
		for _, v := range vs {
			if tooLong(v, maxQueryValue) || tooLong(k, maxQueryValue) {
				return linkflow.Errorf(linkflow.EBadRequest, "The query parameter %s is longer than %d characters.", quoteShort(k), maxQueryValue)
			}
		}
	}
	if n > maxQueryParams {
		return linkflow.Errorf(linkflow.EBadRequest, "The query string has more than %d parameters.", maxQueryParams)
	}
	return nil
}

// authenticated requires a valid API key or access token carrying scope, and
// counts the request against the key's rate limit.
func (s *Server) authenticated(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		secret, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			secret, ok = strings.CutPrefix(auth, "bearer ")
		}
		secret = strings.TrimSpace(secret)
		if !ok || secret == "" || len(secret) > maxSecret {
			w.Header().Set("WWW-Authenticate", `Bearer realm="linkflow"`)
			s.writeError(w, r, authMissing(auth, ok))
			return
		}
		// Wrong keys count per client address; past the limit the address
		// is refused before its key is looked at, so guessing gets 429s,
		// never an answer. The check shares the key lookup's round trip.
		var gate *linkflow.RateLimitRequest
		if s.cfg.AuthFailureLimit.on() {
			b := s.cfg.AuthFailureLimit.bucket(addrBucket("auth", s.clientAddr(r)), true)
			gate = &b
		}
		p, refused, err := s.cfg.Store.Authenticate(r.Context(), secret, gate)
		if refused != nil {
			setRateHeaders(w, *refused)
			e := linkflow.Errorf(linkflow.ETooManyRequests, "Too many requests with an invalid API key or token. Retry later.")
			e.RetryAfter = ceilSeconds(refused.RetryAfter)
			s.writeError(w, r, e)
			return
		}
		if err != nil {
			if errors.Is(err, linkflow.ErrNotFound) {
				if gate != nil {
					s.countFailure(r, *gate)
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="linkflow", error="invalid_token"`)
				s.writeError(w, r, linkflow.Errorf(linkflow.EUnauthorized, "The API key or token is not valid."))
				return
			}
			s.writeError(w, r, err)
			return
		}
		if !s.limit(w, r, s.cfg.KeyLimit.bucket(principalBucket(p), false)) {
			return
		}
		if scope != "" && !p.Can(scope) {
			s.writeError(w, r, linkflow.Errorf(linkflow.EForbidden, "This key or token lacks the %s scope.", scope))
			return
		}
		ctx := context.WithValue(r.Context(), ctxPrincipal, p)
		ctx = context.WithValue(ctx, ctxLogger, reqLog(r).WithLazy(zap.String("org_id", p.OrgID)))
		h(w, r.WithContext(ctx))
	}
}

// authMissing words a request without a usable bearer secret, saying how to
// send one: the usual mistakes are no header, and a key without "Bearer ".
func authMissing(auth string, bearer bool) error {
	const how = "send your API key (or access token) as the header Authorization: Bearer <key>"
	auth = strings.TrimSpace(auth)
	scheme, _, _ := strings.Cut(auth, " ")
	switch {
	case auth == "":
		return linkflow.Errorf(linkflow.EUnauthorized, "Authentication is required: %s.", how)
	case bearer:
		return linkflow.Errorf(linkflow.EUnauthorized, "The bearer key or token is empty or too long: %s.", how)
	case !strings.Contains(auth, " "):
		return linkflow.Errorf(linkflow.EUnauthorized, "The Authorization header has no \"Bearer \" before the key: %s.", how)
	}
	return linkflow.Errorf(linkflow.EUnauthorized, "The Authorization header uses the %s scheme; linkflow takes only Bearer: %s.", quoteShort(scheme), how)
}
