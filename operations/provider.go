package operations

import (
	"context"
	"encoding/json"
	"time"

	"github.com/linkflow/linkflow"
)

// Provider is what an integration implements. A worker calls Login once per
// session attempt, ContinueLogin while the provider asks challenges, Execute
// once per operation in order, and Close at the end whatever happened.
//
// Every method returns an *Error (or an error wrapping one) when it fails, so
// the worker can decide from the error's kind alone whether to retry.
type Provider interface {
	// Login starts a session with the end user's credentials. The result either
	// carries a session or a challenge that must be answered with ContinueLogin.
	Login(ctx context.Context, req LoginRequest) (*LoginResult, error)
	// ContinueLogin answers the challenge of a login in progress.
	ContinueLogin(ctx context.Context, req ContinueRequest) (*LoginResult, error)
	// Execute runs one operation in an established session and returns its
	// data as valid JSON (it goes into the link's result as it is). Writes
	// must honour req.IdempotencyKey: a repeated key returns the first result
	// and changes nothing.
	Execute(ctx context.Context, req ExecuteRequest) (json.RawMessage, error)
	// Close ends the session. It is called once, also after failures.
	Close(ctx context.Context, sessionID string) error
}

// Refresher is implemented by providers whose credentials can be refreshed.
type Refresher interface {
	Refresh(ctx context.Context, creds Credentials) (*Credentials, error)
}

// Revoker is implemented by providers whose credentials can be revoked.
type Revoker interface {
	Revoke(ctx context.Context, creds Credentials) error
}

// LoginRequest carries the end user's credentials. LinkID and Attempt identify
// the session attempt (Attempt counts from 1) for providers that care; OrgID
// is the organization the link belongs to, for providers that keep state per
// customer (the sandbox keeps each organization's accounts apart).
type LoginRequest struct {
	Integration string `json:"integration"`
	OrgID       string `json:"orgId,omitempty"`
	LinkID      string `json:"linkId"`
	Attempt     int    `json:"attempt"`
	Username    string `json:"username"`
	Password    string `json:"password"`
}

// ContinueRequest answers a challenge of the login identified by SessionID.
type ContinueRequest struct {
	Integration string `json:"integration"`
	SessionID   string `json:"sessionId"`
	ChallengeID string `json:"challengeId"`
	Response    string `json:"response"`
}

// LoginResult is where a login stands: a session (logged in), or a challenge
// to answer first. Credentials are what the session leaves behind for the
// connection record; DisplayName names the account for people.
type LoginResult struct {
	SessionID   string       `json:"sessionId"`
	Challenge   *Challenge   `json:"challenge,omitempty"`
	Credentials *Credentials `json:"credentials,omitempty"`
	DisplayName string       `json:"displayName,omitempty"`
}

// Challenge is a question the provider asks before the login completes.
type Challenge struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"` // "otp", ...
	Message   string    `json:"message"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// ExecuteRequest is one operation in a session.
type ExecuteRequest struct {
	Integration    string          `json:"integration"`
	SessionID      string          `json:"sessionId"`
	Resource       string          `json:"resource"`
	Action         string          `json:"action"`
	Arguments      json.RawMessage `json:"arguments,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey"`
}

// Credentials are what a successful login leaves behind.
type Credentials = linkflow.Credentials
