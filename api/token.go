package api

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/linkflow/linkflow"
)

// The token endpoint (seed 002's form fields, seed 000's error envelope).
//
//	grant_type=client_credentials: client_secret is an API key (client_id
//	  optional: the key's id or its organization's id). The token carries the
//	  key's scopes, or fewer, and dies with the key.
//	grant_type=password: username and password of an organization user
//	  (linkflow users create). client_id picks the organization among the
//	  user's; without it, the first the user was given.
//
// scope narrows the token: space- or comma-separated scopes, each of which
// must be known (else 400) and held by the key or user (else 403).

const maxFormBytes = 64 << 10

// maxFormValue bounds each value of a form (the longest is a password).
const maxFormValue = maxPassword

type tokenResponse struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int64     `json:"expires_in"`
	Scope       string    `json:"scope"`
	Orgs        []orgInfo `json:"orgs"`
}

type orgInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// token is POST /v1/auth/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	addr := s.clientAddr(r)
	form, err := s.readForm(w, r)
	if err != nil {
		if s.limit(w, r, s.clientBucket(addr)) {
			s.writeError(w, r, err)
		}
		return
	}
	// Failures count per address; a password grant's also per user and
	// address, and per user across addresses under a much higher ceiling,
	// so that nobody locks a user out for everyone else. A password grant
	// reserves its failures before the password is judged, and gets them
	// back unless it was wrong; an API key (192 random bits, out of reach
	// of parallel guesses) is judged first and counted after, so that a
	// fleet asking for tokens at once is not refused.
	password := form.Get("grant_type") == "password"
	var addrFail linkflow.RateLimitRequest
	if password {
		addrFail = s.cfg.AddressLoginFailureLimit.reserve(addrBucket("login", addr))
	} else {
		addrFail = s.cfg.AddressLoginFailureLimit.bucket(addrBucket("login", addr), true)
	}
	limits := []linkflow.RateLimitRequest{s.clientBucket(addr), addrFail}
	user := strings.ToLower(strings.TrimSpace(form.Get("username")))
	if password && user != "" {
		limits = append(limits, s.cfg.LoginFailureLimit.reserve(addrBucket("login-user:"+hashShort(user), addr)),
			s.cfg.UserLoginFailureLimit.reserve("login-user:"+hashShort(user)))
	}
	if !s.limit(w, r, limits...) {
		return
	}
	wrong := false
	defer func() {
		if !wrong {
			s.refund(r, limits...)
		}
	}()
	w.Header().Set("Pragma", "no-cache") // and no-store, as every /v1 answer
	requested, err := parseScopes(form.Get("scope"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var resp *tokenResponse
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
		resp, err = s.clientCredentials(r, form.Get("client_id"), form.Get("client_secret"), requested)
		if codeOf(err) == linkflow.EUnauthorized {
			s.countFailure(r, addrFail)
		}
	case "password":
		resp, err = s.passwordGrant(r, user, form.Get("password"), form.Get("client_id"), requested)
		wrong = codeOf(err) == linkflow.EUnauthorized
	case "":
		err = badField("grant_type", "is required (client_credentials or password)")
	default:
		e := linkflow.Errorf(linkflow.EBadRequest, "Unsupported grant_type.")
		e.Issues = []linkflow.Issue{{Path: "grant_type", Message: "must be client_credentials or password"}}
		err = e
	}
	if err != nil {
		if codeOf(err) == linkflow.EUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="linkflow"`)
		}
		s.writeError(w, r, err)
		return
	}
	resp.TokenType = "bearer"
	resp.ExpiresIn = int64(s.cfg.TokenTTL.Seconds())
	writeJSON(w, r, http.StatusOK, resp)
}

func (s *Server) clientCredentials(r *http.Request, clientID, secret string, requested []string) (*tokenResponse, error) {
	if secret == "" {
		// RFC 6749 2.3.1: client credentials may come in Basic auth.
		if id, sec, ok := r.BasicAuth(); ok {
			clientID, secret = cmp.Or(clientID, id), sec
		}
	}
	if secret == "" {
		return nil, badField("client_secret", "is required: an API key")
	}
	p, _, err := s.cfg.Store.Authenticate(r.Context(), secret, nil)
	if errors.Is(err, linkflow.ErrNotFound) || (err == nil && p.AccessToken) {
		return nil, linkflow.Errorf(linkflow.EUnauthorized, "The client_secret is not a valid API key.")
	}
	if err != nil {
		return nil, err
	}
	if clientID != "" && clientID != p.KeyID && clientID != p.OrgID {
		return nil, linkflow.Errorf(linkflow.EUnauthorized, "The client_id does not match the API key.")
	}
	scopes, err := narrowScopes(p.Scopes, requested, "API key")
	if err != nil {
		return nil, err
	}
	tok, err := s.cfg.Store.IssueToken(r.Context(), p, secret, scopes, s.cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	org, err := s.cfg.Store.Org(r.Context(), p.OrgID)
	if err != nil {
		return nil, err
	}
	reqLog(r).Info("token issued", zap.String("org_id", p.OrgID), zap.String("key_id", p.KeyID))
	return &tokenResponse{AccessToken: tok, Scope: strings.Join(scopes, " "), Orgs: []orgInfo{{ID: org.ID, Name: org.Name}}}, nil
}

func (s *Server) passwordGrant(r *http.Request, email, password, clientID string, requested []string) (*tokenResponse, error) {
	var issues []linkflow.Issue
	if email == "" {
		issues = append(issues, linkflow.Issue{Path: "username", Message: "is required"})
	} else if tooLong(email, maxUsername) {
		issues = append(issues, linkflow.Issue{Path: "username", Message: fmt.Sprintf("must be at most %d characters", maxUsername)})
	}
	if password == "" {
		issues = append(issues, linkflow.Issue{Path: "password", Message: "is required"})
	}
	if len(issues) > 0 {
		return nil, validation(issues)
	}
	bad := linkflow.Errorf(linkflow.EUnauthorized, "Wrong username or password.")
	u, err := s.cfg.Store.UserByEmail(r.Context(), email)
	if errors.Is(err, linkflow.ErrNotFound) {
		// Spend the time a real check takes, so timing does not tell
		// which users exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, bad
	}
	if len(u.OrgIDs) == 0 {
		return nil, linkflow.Errorf(linkflow.EForbidden, "This user belongs to no organization.")
	}
	org := u.OrgIDs[0]
	if clientID != "" {
		if !slices.Contains(u.OrgIDs, clientID) {
			return nil, linkflow.Errorf(linkflow.EForbidden, "This user does not belong to organization %s.", clientID)
		}
		org = clientID
	}
	scopes, err := narrowScopes(u.Scopes, requested, "user")
	if err != nil {
		return nil, err
	}
	p := &linkflow.Principal{OrgID: org, Subject: "user:" + u.Email, Scopes: scopes, UserVersion: u.Version}
	tok, err := s.cfg.Store.IssueToken(r.Context(), p, "", scopes, s.cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	resp := &tokenResponse{AccessToken: tok, Scope: strings.Join(scopes, " "), Orgs: []orgInfo{}}
	// The selected organization first, then the user's others.
	for _, id := range append([]string{org}, slices.DeleteFunc(slices.Clone(u.OrgIDs), func(o string) bool { return o == org })...) {
		o, err := s.cfg.Store.Org(r.Context(), id)
		if errors.Is(err, linkflow.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		resp.Orgs = append(resp.Orgs, orgInfo{ID: o.ID, Name: o.Name})
	}
	reqLog(r).Info("token issued", zap.String("org_id", org), zap.String("subject", "user"))
	return resp, nil
}

// readForm reads an application/x-www-form-urlencoded body. Only the body
// counts: credentials in a query string end up in logs.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, linkflow.Errorf(linkflow.EUnsupportedMedia, "Content-Type must be application/x-www-form-urlencoded.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, linkflow.Errorf(linkflow.EPayloadTooLarge, "The request body is larger than %d bytes.", maxFormBytes)
		}
		return nil, linkflow.Errorf(linkflow.EBadRequest, "The request body is not a valid form.")
	}
	for k, vs := range r.PostForm {
		for _, v := range vs {
			if tooLong(v, maxFormValue) {
				return nil, linkflow.Errorf(linkflow.EBadRequest, "The form field %s is longer than %d characters.", quoteShort(k), maxFormValue)
			}
		}
	}
	return r.PostForm, nil
}

// parseScopes splits a scope parameter (space- or comma-separated).
func parseScopes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		if !slices.Contains(linkflow.AllScopes, f) {
			return nil, badField("scope", "unknown scope "+strconv.Quote(f)+"; known: "+strings.Join(linkflow.AllScopes, " "))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// narrowScopes returns requested when held covers it (all of held when
// nothing was requested), and 403 naming a scope held lacks otherwise.
func narrowScopes(held, requested []string, who string) ([]string, error) {
	if len(requested) == 0 {
		return slices.Clone(held), nil
	}
	for _, sc := range requested {
		if !slices.Contains(held, sc) {
			return nil, linkflow.Errorf(linkflow.EForbidden, "This %s does not carry the %s scope.", who, sc)
		}
	}
	return requested, nil
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("linkflow-timing-equaliser"), bcrypt.DefaultCost)
	return h
})

// hashShort names a bucket after a value without putting the value (an
// email, say) in a Redis key.
func hashShort(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}
