package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
)

// The end user's endpoints. They are authenticated by the link's claim code,
// never by an API key; a wrong code and an unknown link look the same (404).

// Bounds of what an end user sends. A username is kept with the link and
// sent in its webhook; none of these is ever longer in practice.
const (
	maxClaimCode   = 128
	maxUsername    = 256
	maxPassword    = 1024
	maxChallengeID = 128
	// maxAnswer bounds an answer: a code, or a password again (a
	// credentials challenge).
	maxAnswer = maxPassword
)

// fieldSpec is one string field of an end user's JSON body.
type fieldSpec struct {
	name     string
	dst      *string
	required bool
	max      int
}

// readFields reads string members of a JSON object body into specs: each a
// string of at most max characters, required ones not empty. prefix is the
// path of the object ("" at the top).
func readFields(m map[string]json.RawMessage, prefix string, specs ...fieldSpec) []linkflow.Issue {
	var issues []linkflow.Issue
	for _, f := range specs {
		raw, ok := m[f.name]
		switch {
		case !ok || isNull(raw):
			if f.required {
				issues = append(issues, linkflow.Issue{Path: prefix + f.name, Message: "is required"})
			}
		case json.Unmarshal(raw, f.dst) != nil:
			issues = append(issues, linkflow.Issue{Path: prefix + f.name, Message: "must be a string"})
		case f.required && *f.dst == "":
			issues = append(issues, linkflow.Issue{Path: prefix + f.name, Message: "is required"})
		case tooLong(*f.dst, f.max):
			*f.dst = ""
			issues = append(issues, linkflow.Issue{Path: prefix + f.name, Message: fmt.Sprintf("must be at most %d characters", f.max)})
		}
	}
	return issues
}

// checkFields checks an object's members: the specs' strings, and no member
// other than theirs and others (members read otherwise).
func checkFields(m map[string]json.RawMessage, prefix string, others []string, specs ...fieldSpec) []linkflow.Issue {
	known := append([]string(nil), others...)
	for _, f := range specs {
		known = append(known, f.name)
	}
	return append(unknownFields(m, prefix, known...), readFields(m, prefix, specs...)...)
}

// readObject reads a JSON object body; shape words what it must look like.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, shape string) (map[string]json.RawMessage, error) {
	body, err := s.readJSONBody(w, r)
	if err != nil {
		return nil, err
	}
	m, ok := decodeObject(body)
	if !ok {
		return nil, linkflow.Errorf(linkflow.EBadRequest, "The body must be %s.", shape)
	}
	return m, nil
}

// claim is POST /v1/links/{linkId}/claim.
func (s *Server) claim(w http.ResponseWriter, r *http.Request) {
	guess, lerr := s.codeLimits(w, r)
	if lerr != nil {
		s.writeError(w, r, lerr)
		return
	}
	m, err := s.readObject(w, r, "{claimCode, credentials: {username, password}}")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var code, username, password string
	issues := checkFields(m, "", []string{"credentials"}, fieldSpec{"claimCode", &code, true, maxClaimCode})
	creds := map[string]json.RawMessage{}
	if raw := m["credentials"]; !isNull(raw) {
		var ok bool
		if creds, ok = decodeObject(raw); !ok {
			issues = append(issues, linkflow.Issue{Path: "credentials", Message: "must be an object {username, password}"})
		}
	}
	if creds != nil {
		issues = append(issues, checkFields(creds, "credentials.", nil,
			fieldSpec{"username", &username, true, maxUsername}, fieldSpec{"password", &password, true, maxPassword})...)
	}
	if err := validation(issues); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.doClaim(r, guess, r.PathValue("linkId"), code, username, password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusAccepted, res)
}

// codeLimits applies the per-address limit to a request that carries a claim
// code (a claim, a session read, an answer, the hosted page) and checks,
// without counting, the address's budget of wrong claim codes, in one round
// trip; a wrong code is then counted against it (wrongCode), whatever the
// endpoint, so guesses cannot move to one that does not count.
func (s *Server) codeLimits(w http.ResponseWriter, r *http.Request) (linkflow.RateLimitRequest, *linkflow.Error) {
	addr := s.clientAddr(r)
	guess := s.cfg.ClaimGuessLimit.bucket(addrBucket("claim", addr), true)
	return guess, s.checkLimits(w, r, s.clientBucket(addr), guess)
}

type claimedBody struct {
	LinkID    string          `json:"linkId"`
	Status    linkflow.Status `json:"status"`
	ExpiresAt int64           `json:"expiresAt"`
}

// doClaim claims a link and publishes its claimed message. When JetStream
// does not take the message, the claim stands: it is in the outbox, whose
// relay publishes it (once it is 15 s old). A wrong code or unknown link counts against the
// client address's guess budget. The JSON endpoint and the hosted page's
// login form both claim through here.
func (s *Server) doClaim(r *http.Request, guess linkflow.RateLimitRequest, linkID, code, username, password string) (*claimedBody, error) {
	ctx := r.Context()
	c, err := s.cfg.Store.ClaimLink(ctx, linkID, code, username, password)
	if err != nil {
		s.wrongCode(r, guess, err)
		return nil, err
	}
	s.publish(ctx, c.Message)
	s.log.Info("link claimed", zap.String("link_id", linkID), zap.String("org_id", c.OrgID))
	return &claimedBody{LinkID: linkID, Status: linkflow.StatusClaimed, ExpiresAt: c.ExpiresAt.UnixMilli()}, nil
}

// sessionView is what the end user's client sees of a link.
type sessionView struct {
	LinkID        string               `json:"linkId"`
	IntegrationID string               `json:"integrationId"`
	Operations    []linkflow.Operation `json:"operations"`
	Status        linkflow.Status      `json:"status"`
	ExpiresAt     int64                `json:"expiresAt"`
	Challenge     *challengeView       `json:"challenge,omitempty"`
	Error         *linkflow.LinkError  `json:"error,omitempty"`
	RedirectURL   string               `json:"redirectUrl,omitempty"`
}

type challengeView struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	Message      string `json:"message"`
	ExpiresAt    int64  `json:"expiresAt"`
	AttemptsLeft int    `json:"attemptsLeft"`
	LastError    string `json:"lastError,omitempty"`
}

func (s *Server) sessionOf(l *linkflow.Link) sessionView {
	v := sessionView{LinkID: l.ID, IntegrationID: l.IntegrationID, Operations: l.Operations,
		Status: l.EffectiveStatus(s.now()), ExpiresAt: l.ExpiresAt.UnixMilli(), Error: l.Error}
	if v.Operations == nil {
		v.Operations = []linkflow.Operation{}
	}
	if c := l.Challenge; c != nil && l.Status == linkflow.StatusAwaitingInput {
		v.Challenge = &challengeView{ID: c.ID, Type: c.Type, Message: c.Message,
			ExpiresAt: c.ExpiresAt.UnixMilli(), AttemptsLeft: c.AttemptsLeft, LastError: c.LastError}
	}
	if v.Status.Terminal() {
		v.RedirectURL = redirectURL(l, v.Status)
	}
	return v
}

// redirectURL is the return URL with linkId, status and the verifier
// appended (seed 000's redirect verifier), so the customer's page can check
// that the redirect came from linkflow.
func redirectURL(l *linkflow.Link, st linkflow.Status) string {
	return l.ReturnURLWith(url.Values{"linkId": {l.ID}, "status": {string(st)}, "verifier": {l.Verifier}})
}

// wrongCode counts a lookup that failed as not found (an unknown link or a
// wrong code) against the address's guess budget.
func (s *Server) wrongCode(r *http.Request, guess linkflow.RateLimitRequest, err error) {
	if errors.Is(err, linkflow.ErrNotFound) || codeOf(err) == linkflow.ENotFound {
		s.countFailure(r, guess)
	}
}

// session is GET /v1/links/{linkId}/session?code=...
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	guess, lerr := s.codeLimits(w, r)
	if lerr != nil {
		s.writeError(w, r, lerr)
		return
	}
	l, err := s.cfg.Store.LinkByCode(r.Context(), r.PathValue("linkId"), r.URL.Query().Get("code"))
	if err != nil {
		s.wrongCode(r, guess, err)
		s.writeError(w, r, notFound(err, "Link not found."))
		return
	}
	writeJSON(w, r, http.StatusOK, s.sessionOf(l)) // no-store, as every /v1 answer
}

// input is POST /v1/links/{linkId}/input: the answer to a challenge.
func (s *Server) input(w http.ResponseWriter, r *http.Request) {
	guess, lerr := s.codeLimits(w, r)
	if lerr != nil {
		s.writeError(w, r, lerr)
		return
	}
	m, err := s.readObject(w, r, "{claimCode, challengeId, response}")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var code, challengeID, answer string
	issues := checkFields(m, "", nil, fieldSpec{"claimCode", &code, true, maxClaimCode},
		fieldSpec{"challengeId", &challengeID, true, maxChallengeID}, fieldSpec{"response", &answer, true, maxAnswer})
	if err := validation(issues); err != nil {
		s.writeError(w, r, err)
		return
	}
	l, err := s.submitInput(r.Context(), r.PathValue("linkId"), code, challengeID, answer)
	if err != nil {
		s.wrongCode(r, guess, err)
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusAccepted, s.sessionOf(l))
}

func (s *Server) submitInput(ctx context.Context, linkID, code, challengeID, response string) (*linkflow.Link, error) {
	l, err := s.cfg.Store.SubmitInput(ctx, linkID, code, challengeID, response)
	if err != nil {
		return nil, err
	}
	s.cfg.Messages.Input(l.OrgID, l.ID)
	return l, nil
}

// declineLink is POST /v1/links/{linkId}/decline: the end user does not want
// the link to go on. A pending or claimed link ends canceled (link.canceled
// goes to the customer); a running one, or one waiting for the end user, is
// stopped before its next step and fails CANCELED. It answers the session.
func (s *Server) declineLink(w http.ResponseWriter, r *http.Request) {
	guess, lerr := s.codeLimits(w, r)
	if lerr != nil {
		s.writeError(w, r, lerr)
		return
	}
	m, err := s.readObject(w, r, "{claimCode}")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var code string
	if err := validation(checkFields(m, "", nil, fieldSpec{"claimCode", &code, true, maxClaimCode})); err != nil {
		s.writeError(w, r, err)
		return
	}
	l, err := s.decline(r, guess, r.PathValue("linkId"), code)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, s.sessionOf(l))
}

// decline cancels the link the claim code opens, for its end user; the JSON
// endpoint and the hosted page's Cancel both decline through here.
func (s *Server) decline(r *http.Request, guess linkflow.RateLimitRequest, linkID, code string) (*linkflow.Link, error) {
	ctx := r.Context()
	l, err := s.cfg.Store.LinkByCode(ctx, linkID, code)
	if err != nil {
		s.wrongCode(r, guess, err)
		return nil, notFound(err, "Link not found.")
	}
	res, err := s.cfg.Store.CancelLink(ctx, l.OrgID, l.ID)
	if err != nil {
		return nil, err
	}
	if res.Finished != nil {
		s.publish(ctx, res.Finished.Event)
	}
	if res.Requested {
		s.cfg.Messages.Cancel(l.OrgID, l.ID)
	}
	s.log.Info("link declined by its end user", zap.String("link_id", l.ID), zap.String("org_id", l.OrgID))
	return res.Link, nil
}
