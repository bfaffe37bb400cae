package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// The end user's endpoints. They are authenticated by the link's claim code,
// never by an API key; a wrong code and an unknown link look the same (404).

type claimBody struct {
	ClaimCode   string `json:"claimCode"`
	Credentials struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"credentials"`
}

// claim is POST /v1/links/{linkId}/claim.
func (s *Server) claim(w http.ResponseWriter, r *http.Request) {
	guess, lerr := s.claimLimits(w, r)
	if lerr != nil {
		s.writeError(w, r, lerr)
		return
	}
	body, err := s.readJSONBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var b claimBody
	if err := json.Unmarshal(body, &b); err != nil {
		s.writeError(w, r, linkflow.Errorf(linkflow.EBadRequest, "The body must be {claimCode, credentials: {username, password}}."))
		return
	}
	var issues []linkflow.Issue
	if b.ClaimCode == "" {
		issues = append(issues, linkflow.Issue{Path: "claimCode", Message: "is required"})
	}
	if b.Credentials.Username == "" {
		issues = append(issues, linkflow.Issue{Path: "credentials.username", Message: "is required"})
	}
	if b.Credentials.Password == "" {
		issues = append(issues, linkflow.Issue{Path: "credentials.password", Message: "is required"})
	}
	if len(issues) > 0 {
		e := linkflow.Errorf(linkflow.EBadRequest, "Validation failed.")
		e.Issues = issues
		s.writeError(w, r, e)
		return
	}
	res, err := s.doClaim(r, guess, r.PathValue("linkId"), b.ClaimCode, b.Credentials.Username, b.Credentials.Password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, res)
}

// claimLimits applies the per-address limit to a claim attempt and checks,
// without counting, the address's budget of wrong claim codes; doClaim
// counts a wrong code against it.
func (s *Server) claimLimits(w http.ResponseWriter, r *http.Request) (store.RateLimitRequest, *linkflow.Error) {
	addr := s.clientAddr(r)
	guess := s.cfg.ClaimGuessLimit.bucket(addrBucket("claim", addr), true)
	return guess, s.checkLimits(w, r, s.cfg.ClientLimit.bucket(addrBucket("ip", addr), false), guess)
}

type claimedBody struct {
	LinkID    string          `json:"linkId"`
	Status    linkflow.Status `json:"status"`
	ExpiresAt int64           `json:"expiresAt"`
}

// doClaim claims a link and publishes its claimed message. When JetStream
// does not take the message, the claim stands: it is in the outbox, and the
// sweeper publishes it. A wrong code or unknown link counts against the
// client address's guess budget. The JSON endpoint and the hosted page's
// login form both claim through here.
func (s *Server) doClaim(r *http.Request, guess store.RateLimitRequest, linkID, code, username, password string) (*claimedBody, error) {
	ctx := r.Context()
	c, err := s.cfg.Store.ClaimLink(ctx, linkID, code, username, password)
	if err != nil {
		if linkflow.ErrorCode(err) == linkflow.ENotFound {
			s.countFailure(r, guess)
		}
		return nil, err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.cfg.Publisher.PublishClaimed(pctx, c.OrgID, linkID, c.IntegrationID); err != nil {
		s.log.Warn("publish claimed; the sweeper will retry", zap.String("link_id", linkID), zap.Error(err))
	}
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

// session is GET /v1/links/{linkId}/session?code=...
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	l, err := s.cfg.Store.LinkByCode(r.Context(), r.PathValue("linkId"), r.URL.Query().Get("code"))
	if err != nil {
		s.writeError(w, r, notFound(err, "Link not found."))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.sessionOf(l))
}

type inputBody struct {
	ClaimCode   string `json:"claimCode"`
	ChallengeID string `json:"challengeId"`
	Response    string `json:"response"`
}

// input is POST /v1/links/{linkId}/input: the answer to a challenge.
func (s *Server) input(w http.ResponseWriter, r *http.Request) {
	body, err := s.readJSONBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var b inputBody
	if err := json.Unmarshal(body, &b); err != nil || b.ClaimCode == "" || b.ChallengeID == "" || b.Response == "" {
		s.writeError(w, r, linkflow.Errorf(linkflow.EBadRequest, "The body must be {claimCode, challengeId, response}."))
		return
	}
	l, err := s.submitInput(r.Context(), r.PathValue("linkId"), b.ClaimCode, b.ChallengeID, b.Response)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, s.sessionOf(l))
}

func (s *Server) submitInput(ctx context.Context, linkID, code, challengeID, response string) (*linkflow.Link, error) {
	l, err := s.cfg.Store.SubmitInput(ctx, linkID, code, challengeID, response)
	if err != nil {
		return nil, err
	}
	s.notify(linkflow.SubjectInput, l.OrgID, l.ID)
	return l, nil
}
