package api

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/linkflow/linkflow"
	"go.uber.org/zap"
)

// The hosted page's rendering: what it shows of a link in each state, in
// words for the end user, and the headers every page goes out with.

// page is what the template renders.
type page struct {
	State  string // notfound, problem, login, working, mfa, succeeded, failed, canceled, expired
	Title  string
	Nonce  string
	Code   string
	Script pageScript

	// Embed is the web drop-in's origin when the page is embedded there
	// (embed.go); FrameAncestors are the origins that may frame the page.
	Embed          string
	FrameAncestors []string

	OrgName     string
	Integration string
	Operations  []pageOperation

	LoginAction      string
	MFAAction        string
	DeclineAction    string
	RequiredUsername string
	Username         string
	FormError        string
	ExpiresIn        string
	// Retry is the credentials challenge asking for the password again
	// after a wrong one; the login form comes back, posting to MFAAction.
	Retry *challengeView

	Progress string
	Refresh  int // seconds, for a <meta refresh> without JavaScript
	// RefreshURL is where that refresh goes; empty: this page again.
	RefreshURL string
	Challenge  *challengeView
	Checking   bool // an answer was sent and the worker has not taken it yet

	OutcomeTitle  string
	OutcomeDetail string
	Final         string
	Redirect      template.URL
	RedirectWeb   bool // a <meta refresh> may follow it
	AutoRedirect  bool // the page goes on to Redirect by itself
	RedirectDelay int
}

// pageOperation is one operation as the end user agrees to it: the
// action's description and what its arguments add (the card, by brand and
// last four digits).
type pageOperation struct {
	Text, Detail string
}

// pageScript configures the inline script.
type pageScript struct {
	// Embed is the origin to post messages to, with what they say: the
	// link, its status and the stage.
	Embed  string `json:"embed,omitempty"`
	LinkID string `json:"linkId,omitempty"`
	Status string `json:"status,omitempty"`
	Stage  string `json:"stage,omitempty"`

	Poll            string            `json:"poll,omitempty"`
	Page            string            `json:"page,omitempty"`
	Fingerprint     string            `json:"fingerprint,omitempty"`
	Redirect        string            `json:"redirect,omitempty"`
	RedirectDelayMs int64             `json:"redirectDelayMs,omitempty"`
	Progress        map[string]string `json:"progress,omitempty"`
	// Error is why the page shows no link, for the drop-in (embedError).
	Error string `json:"error,omitempty"`
	// Retry is the link's page to load again after RetryMs, when a passing
	// refusal (too many requests, linkflow briefly unavailable) kept it
	// from showing (embedRetry): the drop-in hears Stage and stays open.
	Retry   string `json:"retry,omitempty"`
	RetryMs int64  `json:"retryMs,omitempty"`
}

// progress is the one message of each stage of a link at work: truthful
// with what linkflow knows (it does not know when the login is done).
func progress(integration string) map[string]string {
	return map[string]string{
		string(linkflow.StatusClaimed): "Connecting to " + integration + "…",
		string(linkflow.StatusRunning): "Logging in to " + integration + " and doing what you allowed…",
	}
}

// renderLink renders the page of link l in its current state.
func (s *Server) renderLink(w http.ResponseWriter, r *http.Request, status int, l *linkflow.Link, code string, f pageForm) {
	sv := s.sessionOf(l)
	p := &page{
		Code: code, Integration: s.integrationName(l.IntegrationID), Operations: s.describeOperations(l),
		LoginAction: "/link/" + url.PathEscape(l.ID) + "/login", MFAAction: "/link/" + url.PathEscape(l.ID) + "/mfa",
		DeclineAction:    "/link/" + url.PathEscape(l.ID) + "/decline",
		RequiredUsername: l.RequiredUsername, Username: f.username, FormError: f.err,
	}
	if o, err := s.cfg.Store.Org(r.Context(), l.OrgID); err == nil {
		p.OrgName = o.Name
		p.FrameAncestors = s.frameAncestors(o)
		p.Embed = embedOrigin(p.FrameAncestors, f.origin)
	}
	self := pagePath(l.ID, code, p.Embed, "")
	poll := "/v1/links/" + url.PathEscape(l.ID) + "/session?code=" + url.QueryEscape(code)
	fingerprint := string(sv.Status) + "/"
	if sv.Challenge != nil {
		fingerprint += sv.Challenge.ID + "/" + strconv.Itoa(sv.Challenge.AttemptsLeft)
	} else {
		fingerprint += "/0"
	}
	switch sv.Status {
	case linkflow.StatusPending:
		p.State, p.Title = "login", "Log in to "+p.Integration
		p.ExpiresIn = until(s.now(), l.ExpiresAt)
	case linkflow.StatusClaimed, linkflow.StatusRunning:
		p.State, p.Title = "working", p.Integration
		p.Progress, p.Refresh = progress(p.Integration)[string(sv.Status)], 2
		p.Script = pageScript{Poll: poll, Page: self, Fingerprint: fingerprint, Progress: progress(p.Integration)}
	case linkflow.StatusAwaitingInput:
		p.State, p.Title = "mfa", "Verify it's you"
		p.Challenge = sv.Challenge
		checking := p.Challenge != nil && f.sent != "" && f.sent == p.Challenge.ID+"."+strconv.Itoa(p.Challenge.AttemptsLeft)
		switch {
		case p.Challenge == nil: // between the status and the challenge write
			p.State, p.Progress, p.Refresh = "working", progress(p.Integration)[string(linkflow.StatusRunning)], 2
		case p.Challenge.Type == linkflow.ChallengeCredentials && checking:
			p.State, p.Title, p.Progress, p.Refresh = "working", p.Integration, "Checking your password…", 2
		case checking:
			p.Checking, p.Refresh = true, 2
		case !l.Challenge.ExpiresAt.IsZero() && !s.now().Before(l.Challenge.ExpiresAt), f.sent == sentClosed+p.Challenge.ID:
			// The session no longer waits for an answer (it would be
			// refused; or one was, the session having stopped waiting by
			// its clock): the page waits for the outcome. (An answer this
			// page sent in time is being checked, above.)
			p.State, p.Title, p.Challenge = "working", p.Integration, nil
			p.Progress, p.Refresh = "The time to answer ran out…", 2
		case p.Challenge.Type == linkflow.ChallengeCredentials:
			// The password was wrong: the login form again, saying so.
			p.State, p.Title, p.Retry, p.Challenge = "login", "Log in to "+p.Integration, p.Challenge, nil
			p.Username, p.FormError = l.Username, p.Retry.LastError
		}
		p.Script = pageScript{Poll: poll, Page: self, Fingerprint: fingerprint}
	default:
		p.State = string(sv.Status)
		p.OutcomeTitle, p.OutcomeDetail, p.Final = s.outcome(l, sv)
		p.Title = p.OutcomeTitle
		if sv.Status == linkflow.StatusSucceeded {
			p.Title = "Done"
		}
		if u, web, ok := safeRedirect(sv.RedirectURL); ok && p.Embed == "" {
			p.Redirect = template.URL(u)
			// Only success moves on by itself: an end user who has to read
			// what went wrong leaves when they choose to (Continue).
			switch {
			case sv.Status == linkflow.StatusSucceeded:
				p.RedirectWeb, p.AutoRedirect = web, true
				p.RedirectDelay = ceilSeconds(s.cfg.RedirectDelay)
				p.Script = pageScript{Redirect: u, RedirectDelayMs: s.cfg.RedirectDelay.Milliseconds()}
			case sv.Status == linkflow.StatusCanceled && f.sent == sentDeclined:
				// The end user chose Cancel: back at once, nothing to read.
				p.RedirectWeb, p.AutoRedirect = web, true
				p.Script = pageScript{Redirect: u}
			}
		}
	}
	if p.Embed != "" {
		p.Script.Embed, p.Script.LinkID, p.Script.Status, p.Script.Stage = p.Embed, l.ID, string(sv.Status), stageOf(p.State)
	}
	s.writePage(w, r, status, p)
}

// outcome words a finished link for the end user: a title, what happened,
// and what to do now. A failed link cannot be retried; the end user has to
// start over from the customer's app, and is told so.
func (s *Server) outcome(l *linkflow.Link, sv sessionView) (title, detail, final string) {
	name := s.integrationName(l.IntegrationID)
	again := "This link can't be used again. To try again, go back to where you started and begin a new request."
	switch sv.Status {
	case linkflow.StatusSucceeded:
		return "Done", "", ""
	case linkflow.StatusExpired:
		return "This link has expired", "It was not used in time.", again
	case linkflow.StatusCanceled:
		return "This request was canceled", "Nothing was done with your account.", again
	}
	var code linkflow.FailureCode
	if sv.Error != nil {
		code = sv.Error.Code
	}
	switch code {
	case linkflow.FailureInvalidCredentials:
		return "Wrong username or password", name + " did not accept that username and password, so nothing was done.", again
	case linkflow.FailureAccountLocked:
		return "Your account is locked", name + " says your account is locked. Unlock it with " + name + " first.", again
	case linkflow.FailureChallengeFailed:
		return "Verification failed", "The verification code was not accepted.", again
	case linkflow.FailureChallengeTimeout:
		return "Verification timed out", "The verification code was not entered in time.", again
	case linkflow.FailureCanceled:
		return "This request was canceled", "It was stopped before it finished. Nothing was saved.", again
	case linkflow.FailureLinkExpired:
		return "This link has expired", "It ran out of time before it finished.", again
	case linkflow.FailureDeclined, linkflow.FailureRejected:
		return "The request was declined", name + " declined it, so nothing was saved.", again
	case linkflow.FailureProviderUnavailable, linkflow.FailureProviderTimeout, linkflow.FailureRateLimited:
		return name + " is not responding", name + " could not be reached just now. Nothing was saved.", again
	case linkflow.FailureAttemptsExhausted:
		// Tried again and again: the provider's failures, linkflow's own
		// (its store out of reach), or a message delivered too often. The
		// page does not know which, so it does not blame the provider.
		return "This could not be finished", "It was tried several times and did not succeed, so nothing was saved.", again
	}
	return "Something went wrong", "The request could not be completed, so nothing was saved.", again
}

// describeOperations words each operation as its action's description from
// the catalog: what the end user agrees to. The link's internal description
// is never shown.
func (s *Server) describeOperations(l *linkflow.Link) []pageOperation {
	out := make([]pageOperation, 0, len(l.Operations))
	for i, op := range l.Operations {
		o := pageOperation{Text: fmt.Sprintf("%s: %s", op.Resource, op.Action)}
		if a, ok := s.cfg.Registry.Action(l.IntegrationID, op.Resource, op.Action); ok && a.Description != "" {
			o.Text = a.Description
		}
		if i < len(l.Consent) {
			o.Detail = l.Consent[i]
		}
		out = append(out, o)
	}
	return out
}

func (s *Server) integrationName(id string) string {
	if in, ok := s.cfg.Registry.Integration(id); ok && in.DisplayName != "" {
		return in.DisplayName
	}
	return id
}

// renderLinkError renders a failed lookup: the same neutral "not found" for
// an unknown link and a wrong code.
func (s *Server) renderLinkError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, linkflow.ErrNotFound) || codeOf(err) == linkflow.ENotFound {
		p := &page{State: "notfound", Title: "Link not found"}
		s.embedError(r, p, "The link was not found: check its URL (the appClipUrl linkflow answered, with its code).")
		s.writePage(w, r, http.StatusNotFound, p)
		return
	}
	s.renderProblem(w, r, err)
}

// renderProblem renders an error that is not about the link's state.
func (s *Server) renderProblem(w http.ResponseWriter, r *http.Request, err error) {
	le := apiError(err)
	switch {
	case le == nil:
		reqLog(r).Error("hosted page", zap.Error(err))
		le = linkflow.Errorf(linkflow.EInternal, "An unexpected error occurred.")
	case errors.Is(err, linkflow.ErrUnknownKey):
		logUnknownKey(r, err)
	}
	p := &page{State: "problem", OutcomeTitle: "Something went wrong", OutcomeDetail: "Try again in a moment."}
	wait := 0 // seconds, for a passing refusal
	switch le.Code {
	case linkflow.ETooManyRequests:
		p.OutcomeTitle, wait = "Too many requests", le.RetryAfter
	case linkflow.EServiceUnavailable:
		p.OutcomeTitle, wait = "Temporarily unavailable", max(le.RetryAfter, 1)
	case linkflow.EForbidden, linkflow.EBadRequest, linkflow.EPayloadTooLarge, linkflow.EUnsupportedMedia:
		p.OutcomeTitle, p.OutcomeDetail = "This request was not accepted", le.Message
	}
	p.Title = p.OutcomeTitle
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		p.OutcomeDetail = fmt.Sprintf("Try again in %s.", seconds(wait))
	}
	if wait > 0 && s.embedRetry(w, r, p, wait) {
		p.OutcomeDetail = fmt.Sprintf("Trying again in %s…", seconds(wait))
	} else {
		s.embedError(r, p, p.OutcomeTitle+": "+p.OutcomeDetail)
	}
	status, ok := statusOf[le.Code]
	if !ok {
		status = http.StatusBadRequest
	}
	s.writePage(w, r, status, p)
}

// embedError lets the web drop-in hear why the page shows no link. Such a
// page names no organization, so no allowed origins would let it be framed,
// and the drop-in would see a frame that never spoke and blame the
// embedding origin. It shows nothing of anyone's, so the origin the drop-in
// named (its ?origin=, or the form's) may frame it and is told the error.
func (s *Server) embedError(r *http.Request, p *page, why string) {
	if _, o, ok := s.namedOrigin(r); ok {
		p.FrameAncestors, p.Embed = []string{o}, o
		p.Script = pageScript{Embed: o, LinkID: r.PathValue("linkId"), Error: why}
	}
}

// namedOrigin is the origin the drop-in named (the query's ?origin=, or the
// form's) as given, and parsed when it is one this API may be framed by
// and post to (a development origin only in dev mode).
func (s *Server) namedOrigin(r *http.Request) (named, origin string, ok bool) {
	named = cmp.Or(r.URL.Query().Get("origin"), r.PostForm.Get("origin"))
	o, err := linkflow.ParseOrigin(named)
	if named == "" || err != nil || (!s.cfg.Dev && linkflow.DevOrigin(o)) {
		return named, "", false
	}
	return named, o, true
}

// embedRetry has a page kept from showing a link by a passing refusal load
// the link's page again after wait seconds, by itself (a script, or a
// <meta refresh> without JavaScript).
// The web drop-in hears the stage "working" from it: every page its frame
// loads must say hello within seconds, or it closes the flow. It needs the
// link and its code (the path's and the query's or the form's, a form the
// refusal came before being read here, bounded); without them it does
// nothing and says so. Like embedError's, such a page shows nothing of
// anyone's, so the origin the drop-in named may frame it.
func (s *Server) embedRetry(w http.ResponseWriter, r *http.Request, p *page, wait int) bool {
	if r.Method == http.MethodPost && r.PostForm == nil {
		_, _ = s.readForm(w, r) // a urlencoded form only, bounded as any form
	}
	linkID, code := r.PathValue("linkId"), cmp.Or(r.URL.Query().Get("code"), r.PostForm.Get("code"))
	if linkID == "" || code == "" {
		return false
	}
	named, o, ok := s.namedOrigin(r)
	p.Script = pageScript{LinkID: linkID, Retry: pagePath(linkID, code, named, ""), RetryMs: int64(wait) * 1000}
	// Without JavaScript too: a refused form's page must not be posted again.
	p.Refresh, p.RefreshURL = wait, p.Script.Retry
	if ok {
		p.FrameAncestors, p.Embed = []string{o}, o
		p.Script.Embed, p.Script.Stage = o, "working"
	}
	return true
}

// writePage renders p with the page's security headers.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	p.Nonce = newNonce()
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		reqLog(r).Error("render hosted page", zap.Error(err))
		http.Error(w, "Something went wrong.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	ancestors := "'none'"
	if len(p.FrameAncestors) > 0 {
		// Each is a bare origin (linkflow.ParseOrigin): nothing in it can
		// end the directive or add a source.
		ancestors = strings.Join(p.FrameAncestors, " ")
	} else {
		h.Set("X-Frame-Options", "DENY") // for browsers without frame-ancestors
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+p.Nonce+"'; style-src 'nonce-"+p.Nonce+
		"'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors "+ancestors+"; base-uri 'none'")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
