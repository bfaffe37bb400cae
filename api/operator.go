package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/monitor"
)

// The operator's page: GET /ops shows an operator the deployment's numbers
// (the backlog, links by status, recent failure codes, failing webhook
// hosts, this process's readiness; package monitor computes them), and
// GET /ops/status answers the same as JSON, for scripts. Read-only: it
// changes nothing. It exists only when Config.OperatorKey is set; otherwise
// every /ops path is a plain 404.
//
// Authentication is the operator key. Scripts send it as a bearer token;
// a browser signs in once with a form (POST /ops/login), and gets a cookie
// holding an expiry and an HMAC of it under the key: stateless, so every
// API process with the same key accepts it, and changing the key ends
// every session. The cookie is HttpOnly, SameSite=Strict, limited to /ops,
// and Secure when the request came over TLS (directly or through a trusted
// proxy saying X-Forwarded-Proto: https). Keys are compared in constant
// time; wrong keys count against the client address's limit of failed
// authentications (AuthFailureLimit), like wrong API keys, and against a
// ceiling for every address together (OperatorFailureLimit).
//
// The page, like the hosted page, runs only its own nonce'd script and
// style, is never framed or cached, and sends no referrer; it works
// without JavaScript, and with it refreshes its numbers every few seconds.

// MinOperatorKey is the least length of Config.OperatorKey; its most is 256.
const MinOperatorKey = 16

const (
	opsCookie     = "linkflow_ops"
	opsSessionTTL = 12 * time.Hour
)

func checkOperator(cfg Config) error {
	if cfg.OperatorKey == "" {
		return nil
	}
	if len(cfg.OperatorKey) < MinOperatorKey {
		return fmt.Errorf("api: OperatorKey must have at least %d characters", MinOperatorKey)
	}
	if len(cfg.OperatorKey) > maxSecret {
		// A longer one could never be given (no bearer secret is read past
		// maxSecret): every sign-in would be refused.
		return fmt.Errorf("api: OperatorKey must have at most %d characters", maxSecret)
	}
	if cfg.Operator == nil {
		return errors.New("api: Operator is required with OperatorKey")
	}
	return nil
}

// registerOperatorRoutes adds the operator's page. They are not the
// customer API: left out of Routes, and of openapi.yaml.
func (s *Server) registerOperatorRoutes() {
	s.mux.HandleFunc("GET /ops", s.opsHome)
	s.mux.HandleFunc("GET /ops/status", s.opsStatus)
	s.mux.HandleFunc("POST /ops/login", s.opsLogin)
	s.mux.HandleFunc("POST /ops/logout", s.opsLogout)
}

// opsStatus is GET /ops/status: the report as JSON.
func (s *Server) opsStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch ok, err := s.operatorAuth(w, r); {
	case err != nil:
		s.writeError(w, r, err)
		return
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer realm="linkflow operator"`)
		s.writeError(w, r, linkflow.Errorf(linkflow.EUnauthorized, "The operator key is required."))
		return
	}
	rep, err := s.operatorReport(r.Context())
	if err != nil {
		reqLog(r).Warn("operator status", zap.Error(err))
		e := linkflow.Errorf(linkflow.EServiceUnavailable, "The status could not be read.")
		e.Detail = err.Error()
		s.writeError(w, r, e)
		return
	}
	writeJSON(w, r, http.StatusOK, rep)
}

// opsHome is GET /ops: the numbers, or the sign-in form. With
// ?part=status (the page's own refresh) it answers the numbers alone, never
// a whole page: without a session that is a 401 in the error envelope, on
// which the page's script reloads to show the sign-in form.
func (s *Server) opsHome(w http.ResponseWriter, r *http.Request) {
	fragment := r.URL.Query().Get("part") == "status"
	switch ok, err := s.operatorAuth(w, r); {
	case err != nil && fragment:
		s.writeError(w, r, err)
		return
	case err != nil:
		s.writeOpsPage(w, r, errorStatus(w, err, http.StatusTooManyRequests), &opsView{FormError: err.Message})
		return
	case !ok && fragment:
		w.Header().Set("Cache-Control", "no-store")
		s.writeError(w, r, linkflow.Errorf(linkflow.EUnauthorized, "The operator session has ended: sign in again."))
		return
	case !ok:
		s.writeOpsPage(w, r, http.StatusOK, &opsView{})
		return
	}
	rep, err := s.operatorReport(r.Context())
	if err != nil {
		reqLog(r).Warn("operator status", zap.Error(err))
		s.writeOpsPage(w, r, http.StatusServiceUnavailable, &opsView{SignedIn: true, Fragment: fragment,
			Problem: "The status could not be read: " + err.Error()})
		return
	}
	v := newOpsView(rep)
	v.Fragment = fragment
	s.writeOpsPage(w, r, http.StatusOK, v)
}

// opsLogin is POST /ops/login: a right key gets the session cookie and goes
// to the page; a wrong one the form again.
func (s *Server) opsLogin(w http.ResponseWriter, r *http.Request) {
	if !s.opsSameOrigin(r) {
		s.writeOpsPage(w, r, http.StatusForbidden, &opsView{FormError: "This form can only be sent from its own page."})
		return
	}
	// A body that is not a form (too large, another type) is refused as
	// such, before a key is judged: it is not a wrong key, and spends no
	// failure budget.
	form, ferr := s.readForm(w, r)
	if ferr != nil {
		le := apiError(ferr) // readForm answers only *linkflow.Error
		// Still a request of the client address's, as every sign-in is.
		if lerr := s.checkLimits(w, r, s.clientBucket(s.clientAddr(r))); lerr != nil {
			le = lerr
		}
		s.writeOpsPage(w, r, errorStatus(w, le, http.StatusBadRequest), &opsView{FormError: le.Message})
		return
	}
	ok, err := s.operatorKeyAttempt(w, r, form.Get("key"))
	if err != nil {
		s.writeOpsPage(w, r, errorStatus(w, err, http.StatusTooManyRequests), &opsView{FormError: err.Message})
		return
	}
	if !ok {
		// The form again, as a page (200), like any sign-in form.
		s.writeOpsPage(w, r, http.StatusOK, &opsView{FormError: "That is not the operator key."})
		return
	}
	exp := s.now().Add(opsSessionTTL)
	http.SetCookie(w, &http.Cookie{Name: opsCookie, Value: s.opsSession(exp), Path: "/ops", Expires: exp,
		MaxAge: int(opsSessionTTL / time.Second), HttpOnly: true, Secure: s.secureCookie(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ops", http.StatusSeeOther)
}

// opsLogout is POST /ops/logout: the cookie goes.
func (s *Server) opsLogout(w http.ResponseWriter, r *http.Request) {
	if !s.opsSameOrigin(r) {
		s.writeOpsPage(w, r, http.StatusForbidden, &opsView{FormError: "This form can only be sent from its own page."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: opsCookie, Value: "", Path: "/ops", MaxAge: -1, HttpOnly: true,
		Secure: s.secureCookie(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ops", http.StatusSeeOther)
}

// operatorAuth says whether r presents the operator key (as a bearer
// token) or a valid session cookie. A bearer key is judged by
// operatorKeyAttempt, under its limits; past one the error is the 429 to
// answer (a 503 while Redis cannot count).
func (s *Server) operatorAuth(w http.ResponseWriter, r *http.Request) (bool, *linkflow.Error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		secret, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			secret, _ = strings.CutPrefix(auth, "bearer ")
		}
		return s.operatorKeyAttempt(w, r, strings.TrimSpace(secret))
	}
	c, err := r.Cookie(opsCookie)
	return err == nil && s.validSession(c.Value), nil
}

// operatorKeyAttempt judges a presented operator key under the client
// address's request limit and two failure budgets, each reserved before the
// key is compared and given back when it was right (so that parallel
// guesses cannot share a budget's last unit): the address's failed
// authentications (AuthFailureLimit, shared with wrong API keys) and wrong
// operator keys from every address (OperatorFailureLimit). A budget's
// refusal is the error to answer: 429, or 503 while Redis cannot count.
func (s *Server) operatorKeyAttempt(w http.ResponseWriter, r *http.Request, key string) (bool, *linkflow.Error) {
	addr := s.clientAddr(r)
	budgets := []linkflow.RateLimitRequest{
		s.clientBucket(addr),
		s.cfg.AuthFailureLimit.reserve(addrBucket("auth", addr)),
		s.cfg.OperatorFailureLimit.reserve("operator-auth"),
	}
	if err := s.checkLimits(w, r, budgets...); err != nil {
		return false, err
	}
	if !s.operatorKeyIs(key) {
		return false, nil
	}
	s.refund(r, budgets...)
	return true, nil
}

// operatorKeyIs compares in constant time (of the key's length too: both
// sides are hashed first).
func (s *Server) operatorKeyIs(given string) bool {
	if given == "" || len(given) > maxSecret {
		return false
	}
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(s.cfg.OperatorKey))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// opsSession is a session cookie's value: its expiry and an HMAC of it
// under the operator key.
func (s *Server) opsSession(exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + s.opsMAC(e)
}

func (s *Server) opsMAC(exp string) string {
	m := hmac.New(sha256.New, []byte(s.cfg.OperatorKey))
	m.Write([]byte("linkflow operator session\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) validSession(v string) bool {
	e, mac, ok := strings.Cut(v, ".")
	if !ok || len(v) > 128 {
		return false
	}
	unix, err := strconv.ParseInt(e, 10, 64)
	if err != nil || !s.now().Before(time.Unix(unix, 0)) {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(s.opsMAC(e)))
}

// secureCookie says whether a cookie set in answer to r is sent back over
// TLS only: always when the public URL is https (the proxy in front of
// linkflow may not be a trusted one, so r alone cannot tell), and when r
// came over TLS.
func (s *Server) secureCookie(r *http.Request) bool {
	return strings.HasPrefix(s.cfg.PublicURL, "https://") || s.overTLS(r)
}

// overTLS says whether the client reached linkflow over TLS, directly or
// through a trusted proxy.
func (s *Server) overTLS(r *http.Request) bool {
	return r.TLS != nil || (s.trusted(parseAddr(r.RemoteAddr)) && r.Header.Get("X-Forwarded-Proto") == "https")
}

// opsSameOrigin refuses a form POST a browser says came from another site.
// The operator may reach the API at another address than PublicURL (an
// internal one), so an Origin may also be the request's own host.
func (s *Server) opsSameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	return o == "" || o == "null" || o == s.publicOrigin() || o == "http://"+r.Host || o == "https://"+r.Host
}

// operatorReport is the monitor's status with this process's readiness.
func (s *Server) operatorReport(ctx context.Context) (*monitor.Report, error) {
	st, err := s.cfg.Operator.Status(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	self := monitor.Probe{Role: "api", Addr: "this process", Ready: true, Checks: map[string]string{}}
	for _, c := range s.cfg.Ready {
		self.Checks[c.Name] = "ok"
		if err := c.Check(rctx); err != nil {
			self.Ready, self.Checks[c.Name] = false, err.Error()
		}
	}
	return &monitor.Report{Status: st, Probes: []monitor.Probe{self}}, nil
}
