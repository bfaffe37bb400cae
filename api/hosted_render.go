package api

import (
	"bytes"
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
	Operations  []string

	LoginAction      string
	MFAAction        string
	RequiredUsername string
	Username         string
	FormError        string
	ExpiresIn        string

	Progress  string
	Refresh   int // seconds, for a <meta refresh> without JavaScript
	Challenge *challengeView
	Checking  bool // an answer was sent and the worker has not taken it yet

	OutcomeTitle  string
	OutcomeDetail string
	Final         string
	Redirect      template.URL
	RedirectWeb   bool
	RedirectDelay int
}

// pageScript configures the inline script.
type pageScript struct {
	// Embed is the origin to post messages to, with what they say: the
	// link, its status and the stage.
	Embed  string `json:"embed,omitempty"`
	LinkID string `json:"linkId,omitempty"`
	Status string `json:"status,omitempty"`
	Stage  string `json:"stage,omitempty"`

	Poll            string `json:"poll,omitempty"`
	Page            string `json:"page,omitempty"`
	Fingerprint     string `json:"fingerprint,omitempty"`
	Redirect        string `json:"redirect,omitempty"`
	RedirectDelayMs int64  `json:"redirectDelayMs,omitempty"`
}

// renderLink renders the page of link l in its current state.
func (s *Server) renderLink(w http.ResponseWriter, r *http.Request, status int, l *linkflow.Link, code string, f pageForm) {
	sv := s.sessionOf(l)
	p := &page{
		Code: code, Integration: s.integrationName(l.IntegrationID), Operations: s.describeOperations(l),
		LoginAction: "/link/" + url.PathEscape(l.ID) + "/login", MFAAction: "/link/" + url.PathEscape(l.ID) + "/mfa",
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
		p.State, p.Title = "working", "Connecting to "+p.Integration
		p.Progress = "Logging in…"
		if sv.Status == linkflow.StatusRunning {
			p.Progress = "Logged in. Working on it…"
		}
		p.Refresh = 2
		p.Script = pageScript{Poll: poll, Page: self, Fingerprint: fingerprint}
	case linkflow.StatusAwaitingInput:
		p.State, p.Title = "mfa", "Verify it's you"
		p.Challenge = sv.Challenge
		if p.Challenge == nil { // between the status and the challenge write
			p.State, p.Progress, p.Refresh = "working", "Logging in…", 2
		} else if f.sent != "" && f.sent == p.Challenge.ID+"."+strconv.Itoa(p.Challenge.AttemptsLeft) {
			p.Checking, p.Refresh = true, 2
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
			p.Redirect, p.RedirectWeb = template.URL(u), web
			p.RedirectDelay = ceilSeconds(s.cfg.RedirectDelay)
			p.Script = pageScript{Redirect: u, RedirectDelayMs: s.cfg.RedirectDelay.Milliseconds()}
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
	case linkflow.FailureProviderUnavailable, linkflow.FailureProviderTimeout, linkflow.FailureRateLimited, linkflow.FailureAttemptsExhausted:
		return name + " is not responding", name + " could not be reached just now. Nothing was saved.", again
	}
	return "Something went wrong", "The request could not be completed, so nothing was saved.", again
}

// describeOperations words each operation as its action's description from
// the catalog: what the end user agrees to. The link's internal description
// is never shown.
func (s *Server) describeOperations(l *linkflow.Link) []string {
	out := make([]string, 0, len(l.Operations))
	for _, op := range l.Operations {
		if a, ok := s.cfg.Registry.Action(l.IntegrationID, op.Resource, op.Action); ok && a.Description != "" {
			out = append(out, a.Description)
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s", op.Resource, op.Action))
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
		s.writePage(w, r, http.StatusNotFound, &page{State: "notfound", Title: "Link not found"})
		return
	}
	s.renderProblem(w, r, err)
}

// renderProblem renders an error that is not about the link's state.
func (s *Server) renderProblem(w http.ResponseWriter, r *http.Request, err error) {
	le := apiError(err)
	if le == nil {
		reqLog(r).Error("hosted page", zap.Error(err))
		le = linkflow.Errorf(linkflow.EInternal, "An unexpected error occurred.")
	}
	p := &page{State: "problem", OutcomeTitle: "Something went wrong", OutcomeDetail: "Try again in a moment."}
	switch le.Code {
	case linkflow.ETooManyRequests:
		p.OutcomeTitle = "Too many requests"
		p.OutcomeDetail = fmt.Sprintf("Try again in %s.", seconds(le.RetryAfter))
		w.Header().Set("Retry-After", strconv.Itoa(le.RetryAfter))
	case linkflow.EForbidden, linkflow.EBadRequest, linkflow.EPayloadTooLarge, linkflow.EUnsupportedMedia:
		p.OutcomeTitle, p.OutcomeDetail = "This request was not accepted", le.Message
	}
	p.Title = p.OutcomeTitle
	status, ok := statusOf[le.Code]
	if !ok {
		status = http.StatusBadRequest
	}
	s.writePage(w, r, status, p)
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
