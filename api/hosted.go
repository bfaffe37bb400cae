package api

import (
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/linkflow/linkflow"
)

// The hosted page: GET /link/{linkId}?code=... is where an end user lands
// from a link's appClipUrl. It shows what the link will do in plain words, a
// login form and Cancel; then progress, the login form again after a wrong
// password, an MFA prompt when the provider asks one, and the outcome: a
// success redirects to the link's return URL, a failure waits for the end
// user's Continue. It works
// with plain HTML forms (POST, then 303 back to the page) and a <meta
// refresh>; a small inline script polls the session endpoint so the page
// moves on as soon as the link does.
//
// The claim code in the URL and in the forms is the end user's capability.
// The page is never cached, sends no referrer (its URL holds the code), and
// runs only its own nonce'd script and style. It is never framed, except by
// the organization's allowed origins (the web drop-in, embed.go).

//go:embed hosted/page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// hostedPage is GET /link/{linkId}?code=...
func (s *Server) hostedPage(w http.ResponseWriter, r *http.Request) {
	guess, lerr := s.codeLimits(w, r)
	if lerr != nil {
		s.renderProblem(w, r, lerr)
		return
	}
	q := r.URL.Query()
	l, err := s.cfg.Store.LinkByCode(r.Context(), r.PathValue("linkId"), q.Get("code"))
	if err != nil {
		s.wrongCode(r, guess, err)
		s.renderLinkError(w, r, err)
		return
	}
	s.renderLink(w, r, http.StatusOK, l, q.Get("code"), pageForm{sent: q.Get("sent"), origin: q.Get("origin")})
}

// pageForm carries what the end user typed back into a re-rendered form.
type pageForm struct {
	err      string
	username string
	sent     string // "challengeId.attemptsLeft" of an answer just sent
	origin   string // the embedding page's origin, as the drop-in said it (not yet checked)
}

// hostedLogin is POST /link/{linkId}/login: the login form. It claims the
// link exactly as POST /v1/links/{linkId}/claim does, then sends the browser
// back to the page (303), which shows the progress.
func (s *Server) hostedLogin(w http.ResponseWriter, r *http.Request) {
	if !s.sameOriginForm(w, r) {
		return
	}
	guess, limited := s.codeLimits(w, r)
	if limited != nil {
		// Refused before the code is read: the form again (for a right
		// code) against a missing link (for a wrong one) would tell a
		// guesser over its limit which it sent.
		s.renderProblem(w, r, limited)
		return
	}
	form, err := s.readForm(w, r)
	if err != nil {
		s.renderProblem(w, r, err)
		return
	}
	linkID, code, origin := r.PathValue("linkId"), form.Get("code"), form.Get("origin")
	username, password := strings.TrimSpace(form.Get("username")), form.Get("password")
	switch {
	case username == "" || password == "":
		err = linkflow.Errorf(linkflow.EBadRequest, "Enter your username and password.")
	case tooLong(username, maxUsername):
		username, err = "", linkflow.Errorf(linkflow.EBadRequest, "That username is too long (at most %d characters).", maxUsername)
	default:
		_, err = s.doClaim(r, guess, linkID, code, username, password)
	}
	if err == nil {
		http.Redirect(w, r, pagePath(linkID, code, origin, ""), http.StatusSeeOther)
		return
	}
	switch codeOf(err) {
	case linkflow.ENotFound:
		s.renderLinkError(w, r, linkflow.ErrNotFound)
		return
	case linkflow.EConflict:
		// Claimed already (another tab), or expired: the page says which.
		http.Redirect(w, r, pagePath(linkID, code, origin, ""), http.StatusSeeOther)
		return
	case linkflow.EBadRequest, linkflow.EUnprocessable, linkflow.ETooManyRequests:
	default:
		s.renderProblem(w, r, err)
		return
	}
	// Show the form again, saying what was wrong.
	l, lerr := s.cfg.Store.LinkByCode(r.Context(), linkID, code)
	if lerr != nil {
		s.wrongCode(r, guess, lerr)
		s.renderLinkError(w, r, lerr)
		return
	}
	le := apiError(err)
	msg := le.Message
	switch le.Code {
	case linkflow.EUnprocessable:
		msg = "This link must be used with a different " + s.integrationName(l.IntegrationID) + " account."
	case linkflow.ETooManyRequests:
		msg = fmt.Sprintf("Too many attempts. Try again in %s.", seconds(le.RetryAfter))
		w.Header().Set("Retry-After", strconv.Itoa(le.RetryAfter))
	}
	s.renderLink(w, r, statusOf[le.Code], l, code, pageForm{err: msg, username: username, origin: origin})
}

// hostedMFA is POST /link/{linkId}/mfa: the answer to a challenge.
func (s *Server) hostedMFA(w http.ResponseWriter, r *http.Request) {
	guess, form, ok := s.hostedForm(w, r)
	if !ok {
		return
	}
	linkID, code := r.PathValue("linkId"), form.Get("code")
	challengeID, answer := form.Get("challengeId"), strings.TrimSpace(form.Get("response"))
	if form.Has("password") {
		answer = form.Get("password") // a credentials challenge: the password again, as typed
	}
	sent := ""
	if answer != "" && challengeID != "" {
		_, err := s.submitInput(r.Context(), linkID, code, challengeID, answer)
		s.wrongCode(r, guess, err)
		switch codeOf(err) {
		case linkflow.ENotFound:
			s.renderLinkError(w, r, linkflow.ErrNotFound)
			return
		case linkflow.EConflict:
			// No longer waiting for this answer: the page shows why. A
			// second send of the form while the first answer is checked
			// shows that it was sent.
			switch {
			case errors.Is(err, linkflow.ErrAlreadyAnswered):
				sent = challengeID + "." + form.Get("attemptsLeft")
			case errors.Is(err, linkflow.ErrChallengeExpired):
				// The session stopped waiting for it, though the API's
				// clock may not say so yet: the page says the time ran out.
				sent = sentClosed + challengeID
			}
		default:
			if err != nil {
				s.renderProblem(w, r, err)
				return
			}
			sent = challengeID + "." + form.Get("attemptsLeft")
		}
	}
	http.Redirect(w, r, pagePath(linkID, code, form.Get("origin"), sent), http.StatusSeeOther)
}

// hostedDecline is POST /link/{linkId}/decline: the end user's "Cancel".
// Before the login the link ends canceled (the customer gets link.canceled);
// while a session runs it stops and fails CANCELED, as the API's cancel
// does. The end user then goes back to the return URL with the status,
// at once: they chose to leave.
func (s *Server) hostedDecline(w http.ResponseWriter, r *http.Request) {
	guess, form, ok := s.hostedForm(w, r)
	if !ok {
		return
	}
	linkID, code := r.PathValue("linkId"), form.Get("code")
	l, err := s.decline(r, guess, linkID, code)
	switch codeOf(err) {
	case linkflow.ENotFound:
		s.renderLinkError(w, r, linkflow.ErrNotFound)
		return
	case linkflow.EConflict: // it ended meanwhile: the page says how
	default:
		if err != nil {
			s.renderProblem(w, r, err)
			return
		}
		if l.Status == linkflow.StatusCanceled {
			// The page sends the end user on at once. (A redirect from here
			// would be a form's, which the page's CSP form-action 'self'
			// keeps on linkflow's origin.)
			http.Redirect(w, r, pagePath(linkID, code, form.Get("origin"), sentDeclined), http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, pagePath(linkID, code, form.Get("origin"), ""), http.StatusSeeOther)
}

// sameOriginForm refuses a form POST that a browser says came from another
// site. The claim code in the form is the real capability; this is defence
// in depth. Browsers send Sec-Fetch-Site; older ones an Origin, which is
// "null" under Referrer-Policy no-referrer.
// hostedForm reads a form the hosted page posted (from the page itself,
// within the end user's limits); false means the answer went out already.
func (s *Server) hostedForm(w http.ResponseWriter, r *http.Request) (linkflow.RateLimitRequest, url.Values, bool) {
	if !s.sameOriginForm(w, r) {
		return linkflow.RateLimitRequest{}, nil, false
	}
	guess, lerr := s.codeLimits(w, r)
	if lerr != nil {
		s.renderProblem(w, r, lerr)
		return guess, nil, false
	}
	form, err := s.readForm(w, r)
	if err != nil {
		s.renderProblem(w, r, err)
		return guess, nil, false
	}
	return guess, form, true
}

func (s *Server) sameOriginForm(w http.ResponseWriter, r *http.Request) bool {
	ok := true
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		ok = site == "same-origin"
	} else if o := r.Header.Get("Origin"); o != "" && o != "null" {
		ok = o == s.publicOrigin()
	}
	if !ok {
		s.renderProblem(w, r, linkflow.Errorf(linkflow.EForbidden, "This form can only be sent from its own page."))
	}
	return ok
}

func (s *Server) publicOrigin() string {
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// sentDeclined marks the page the end user lands on after Cancel: it goes
// on to the return URL at once.
const sentDeclined = "declined"

// sentClosed, before a challenge's id, marks the page the end user lands on
// after an answer refused because the session stopped waiting for it.
const sentClosed = "closed."

// pagePath is the hosted page of a link; origin is the embedding page's
// (the web drop-in's), sent marks an answer just sent, or the end user's
// Cancel (sentDeclined), or an answer refused as the session stopped
// waiting for it (sentClosed and the challenge id).
func pagePath(linkID, code, origin, sent string) string {
	p := "/link/" + url.PathEscape(linkID) + "?code=" + url.QueryEscape(code)
	if origin != "" {
		p += "&origin=" + url.QueryEscape(origin)
	}
	if sent != "" {
		p += "&sent=" + url.QueryEscape(sent)
	}
	return p
}

// safeRedirect checks a redirect URL once more before it goes into the page
// (creation already allowed only https, http in dev and registered app
// schemes) and says whether it is a web URL, which a <meta refresh> may
// follow; app schemes get the script and a plain link.
func safeRedirect(raw string) (u string, web, ok bool) {
	if raw == "" {
		return "", false, false
	}
	p, err := url.Parse(raw)
	if err != nil || p.Scheme == "" {
		return "", false, false
	}
	scheme := strings.ToLower(p.Scheme)
	web = scheme == "https" || scheme == "http"
	if !web && !linkflow.ValidAppScheme(scheme) {
		return "", false, false
	}
	return raw, web, true
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b) // no "+": html/template would escape it in the attribute
}

func seconds(n int) string {
	if n >= 120 {
		return plural((n+59)/60, "minute")
	}
	return plural(max(n, 1), "second")
}

// until words the time left before t, for people.
func until(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d < time.Minute:
		return "in less than a minute"
	case d < 2*time.Hour:
		return "in " + plural(int(d.Minutes()+0.5), "minute")
	case d < 48*time.Hour:
		return "in " + plural(int(d.Hours()+0.5), "hour")
	}
	return "in " + plural(int(d.Hours()/24+0.5), "day")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
