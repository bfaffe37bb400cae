package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// The end user's endpoints are authenticated by the link's claim code, never
// by an API key: an app or a web page calls them with a Client that has no
// APIKey (one that has one does not send it here).

// Credentials are the end user's login at the provider.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ClaimRequest is the body of POST /v1/links/{linkId}/claim.
type ClaimRequest struct {
	ClaimCode   string      `json:"claimCode"`
	Credentials Credentials `json:"credentials"`
}

// Claimed is the 202 answer of ClaimLink.
type Claimed struct {
	LinkID    string `json:"linkId"`
	Status    Status `json:"status"`
	ExpiresAt int64  `json:"expiresAt"`
}

// ChallengeCredentials is the Type of the challenge that asks for the
// password again after the provider refused it: answer it with the
// password.
const ChallengeCredentials = "credentials"

// Challenge is a question the provider asked at login, such as an OTP, or
// the password again (ChallengeCredentials).
type Challenge struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	Message      string `json:"message"`
	ExpiresAt    int64  `json:"expiresAt"`
	AttemptsLeft int    `json:"attemptsLeft"`
	// LastError is set when the previous answer was wrong.
	LastError string `json:"lastError,omitempty"`
}

// Session is a link as the end user's client sees it.
type Session struct {
	LinkID        string      `json:"linkId"`
	IntegrationID string      `json:"integrationId"`
	Operations    []Operation `json:"operations"`
	Status        Status      `json:"status"`
	ExpiresAt     int64       `json:"expiresAt"`
	// Challenge is set while the link awaits input: answer it with
	// SubmitInput.
	Challenge *Challenge `json:"challenge,omitempty"`
	// Error is set when the link failed.
	Error *LinkError `json:"error,omitempty"`
	// RedirectURL is set once the link has finished and has a return URL:
	// the return URL with linkId, status and verifier appended.
	RedirectURL string `json:"redirectUrl,omitempty"`
}

// InputRequest is the body of POST /v1/links/{linkId}/input.
type InputRequest struct {
	ClaimCode   string `json:"claimCode"`
	ChallengeID string `json:"challengeId"`
	Response    string `json:"response"`
}

// DeclineRequest is the body of POST /v1/links/{linkId}/decline.
type DeclineRequest struct {
	ClaimCode string `json:"claimCode"`
}

// ClaimLink claims a link with the end user's credentials, which starts
// its session (POST /v1/links/{linkId}/claim). A wrong password is not an
// error here: the session asks for it again (a ChallengeCredentials
// challenge), and after three the link fails with INVALID_CREDENTIALS (see
// GetSession).
func (c *Client) ClaimLink(ctx context.Context, linkID string, req ClaimRequest) (*Claimed, error) {
	return endUserPost[Claimed](ctx, c, "ClaimLink", linkID, "claim", req)
}

// GetSession returns the link as the end user's client sees it (GET
// /v1/links/{linkId}/session?code=).
func (c *Client) GetSession(ctx context.Context, linkID, claimCode string) (*Session, error) {
	if linkID == "" {
		return nil, errors.New("client: GetSession needs a link id")
	}
	r := &request{method: http.MethodGet, path: "/v1/links/" + url.PathEscape(linkID) + "/session",
		query: url.Values{"code": {claimCode}}, idempotent: true}
	var out Session
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SubmitInput answers the session's current challenge (POST
// /v1/links/{linkId}/input). The session it returns is as the answer found
// it: the worker checks the answer next, so poll GetSession until the
// challenge's ID or AttemptsLeft, or the status, changes. A wrong code
// brings the same challenge back with one attempt fewer and LastError; a
// wrong password (ChallengeCredentials) a new challenge, another ID.
//
// A CONFLICT_ERROR (409) says the session does not wait for this answer:
// the link is not awaiting input, the challenge is not its current one, the
// challenge expired (or the session stopped waiting for it at its expiry,
// whatever the clocks say), or it was answered already and that answer is
// being checked. In each case poll GetSession for what comes next (another
// challenge, or the outcome) rather than sending the answer again.
func (c *Client) SubmitInput(ctx context.Context, linkID string, req InputRequest) (*Session, error) {
	return endUserPost[Session](ctx, c, "SubmitInput", linkID, "input", req)
}

// DeclineLink is the end user's Cancel (POST /v1/links/{linkId}/decline): a
// pending or claimed link ends canceled, a running one fails CANCELED.
func (c *Client) DeclineLink(ctx context.Context, linkID string, req DeclineRequest) (*Session, error) {
	return endUserPost[Session](ctx, c, "DeclineLink", linkID, "decline", req)
}

// endUserPost posts body to one of the end user's actions on a link (no API
// key: the body carries the claim code) and decodes the answer; op names
// the method in errors.
func endUserPost[T any](ctx context.Context, c *Client, op, linkID, action string, body any) (*T, error) {
	if linkID == "" {
		return nil, fmt.Errorf("client: %s needs a link id", op)
	}
	r, err := jsonRequest(http.MethodPost, "/v1/links/"+url.PathEscape(linkID)+"/"+action, body)
	if err != nil {
		return nil, err
	}
	r.auth = false
	var out T
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
