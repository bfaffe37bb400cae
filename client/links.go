package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
)

// Status is where a link is in its lifecycle:
//
//	pending -> claimed -> running (<-> awaiting_input) -> succeeded | failed
//	pending -> expired
//	pending | claimed -> canceled
type Status string

// The statuses of a link.
const (
	StatusPending       Status = "pending"
	StatusClaimed       Status = "claimed"
	StatusRunning       Status = "running"
	StatusAwaitingInput Status = "awaiting_input"
	StatusSucceeded     Status = "succeeded"
	StatusFailed        Status = "failed"
	StatusExpired       Status = "expired"
	StatusCanceled      Status = "canceled"
)

// Terminal reports whether a link in this status has ended for good.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusExpired, StatusCanceled:
		return true
	}
	return false
}

// OperationInput is one operation of a link to create.
type OperationInput struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
	// Arguments are validated against the action's JSON Schema (see
	// ListProviders): a map, or a struct that marshals to an object. They
	// are sealed at rest and never returned.
	Arguments any `json:"arguments,omitempty"`
}

// Operation is an operation of a link as linkflow shows it: without its
// arguments.
type Operation struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
}

// CreateLinkRequest is the body of POST /v1/links.
type CreateLinkRequest struct {
	// IntegrationID and Operations (1 to 20, run in order in one session)
	// are required.
	IntegrationID string           `json:"integrationId"`
	Operations    []OperationInput `json:"operations"`
	// WebhookURL gets the signed webhook when the link ends.
	WebhookURL string `json:"webhookUrl,omitempty"`
	// ReturnURL is where the end user goes at the end: https or an app
	// scheme (myapp://callback).
	ReturnURL string `json:"returnUrl,omitempty"`
	// ExternalUserID is your id for the end user (ListLinks filters on it).
	ExternalUserID string `json:"externalUserId,omitempty"`
	Debug          bool   `json:"debug,omitempty"`
	// ExpiresIn is in seconds. Default (0) 14400, 4 hours; at most 30 days.
	ExpiresIn int64 `json:"expiresIn,omitempty"`
	// Description is internal, never shown to the end user.
	Description string `json:"description,omitempty"`
	// RequiredUsername is the provider username the end user must log in as.
	RequiredUsername string `json:"requiredUsername,omitempty"`
	// ConnectionID names a connection this link renews.
	ConnectionID string `json:"connectionId,omitempty"`

	// IdempotencyKey is sent as the Idempotency-Key header (at most 255
	// bytes): the same key and body within 24 hours answer the first
	// link again. Default: a random key per call, kept across its retries.
	// Set your own (an order id, say) to make retries of your own safe.
	IdempotencyKey string `json:"-"`
}

// CreatedLink is the 201 answer of CreateLink.
type CreatedLink struct {
	LinkID string `json:"linkId"`
	// ClaimCode authenticates the end user's endpoints; AppClipURL is
	// linkflow's page for the end user ({public URL}/link/{linkId}?code=...).
	ClaimCode     string      `json:"claimCode"`
	IntegrationID string      `json:"integrationId"`
	Operations    []Operation `json:"operations"`
	Status        Status      `json:"status"`
	AppClipURL    string      `json:"appClipUrl"`
	// ReturnURL is the request's, with linkId appended; empty without one.
	ReturnURL string `json:"returnUrl,omitempty"`
	ExpiresAt int64  `json:"expiresAt"`
	CreatedAt int64  `json:"createdAt"`

	// Replayed is set when linkflow answered an earlier request with the
	// same Idempotency-Key (Idempotent-Replayed: true).
	Replayed bool `json:"-"`
}

// LinkError is why a link failed.
type LinkError struct {
	// Code is INVALID_CREDENTIALS, ACCOUNT_LOCKED, CHALLENGE_FAILED,
	// CHALLENGE_TIMEOUT, DECLINED, REJECTED, PROVIDER_UNAVAILABLE,
	// PROVIDER_TIMEOUT, RATE_LIMITED, ATTEMPTS_EXHAUSTED, CANCELED,
	// LINK_EXPIRED, UNPROCESSABLE_LINK, RESULT_TOO_LARGE or INTERNAL_ERROR.
	Code    string `json:"code"`
	Message string `json:"message"`
	// OperationIndex is the operation that failed (for CANCELED, the one
	// that did not start); nil when the failure was not in one.
	OperationIndex *int `json:"operationIndex,omitempty"`
}

// Link is a link as GET /v1/links/{linkId} shows it, and the data of a
// link.* event.
type Link struct {
	LinkID        string      `json:"linkId"`
	IntegrationID string      `json:"integrationId"`
	Operations    []Operation `json:"operations"`
	Status        Status      `json:"status"`
	// ClaimCode and AppClipURL are only there while the link is open, and
	// only for a key or token with the links:write scope (a links:read key
	// never sees them).
	ClaimCode  string `json:"claimCode,omitempty"`
	AppClipURL string `json:"appClipUrl,omitempty"`
	WebhookURL string `json:"webhookUrl,omitempty"`
	ReturnURL  string `json:"returnUrl,omitempty"`
	// Verifier is appended to the redirect to ReturnURL; compare them to
	// trust that a redirect came from linkflow.
	Verifier         string `json:"verifier,omitempty"`
	ExternalUserID   string `json:"externalUserId,omitempty"`
	Description      string `json:"description,omitempty"`
	RequiredUsername string `json:"requiredUsername,omitempty"`
	Debug            bool   `json:"debug"`
	// OwnerUserID and OwnerEmail name the user who created the link with
	// an access token of theirs (the password grant); empty for an API key.
	OwnerUserID string `json:"ownerUserId,omitempty"`
	OwnerEmail  string `json:"ownerEmail,omitempty"`
	CreatedAt   int64  `json:"createdAt"`
	ExpiresAt   int64  `json:"expiresAt"`
	// ClaimedAt, StartedAt and CompletedAt are nil until they happen.
	ClaimedAt   *int64 `json:"claimedAt"`
	StartedAt   *int64 `json:"startedAt"`
	CompletedAt *int64 `json:"completedAt"`
	// Username is the one the end user logged in with.
	Username *string `json:"username"`
	// ConnectionID is the connection a successful link made or renewed.
	ConnectionID *string `json:"connectionId"`
	// CancelRequested is set while a running link is being canceled.
	CancelRequested bool `json:"cancelRequested,omitempty"`
	// Result is there when the link succeeded; OperationResults splits it
	// per operation.
	Result json.RawMessage `json:"result,omitempty"`
	// ResultOmitted is set in a webhook whose result did not fit: fetch the
	// link.
	ResultOmitted bool       `json:"resultOmitted,omitempty"`
	Error         *LinkError `json:"error,omitempty"`
	// Integration is the integration's catalog entry, when asked for with
	// ExpandIntegration.
	Integration *Integration `json:"integration,omitempty"`
}

// OperationResult is the result of one operation of a succeeded link.
type OperationResult struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
	// Data is {resultKey: data}, resultKey being the action's (see
	// ListProviders), such as {"paymentMethods": [...]}.
	Data json.RawMessage `json:"data"`
}

// OperationResults returns the link's result per operation, in order. The
// API shapes the result of a one-operation link flat and wraps several in
// {"operations": [...]}; this reads both. It returns nil without a result.
func (l *Link) OperationResults() ([]OperationResult, error) {
	if len(l.Result) == 0 || string(l.Result) == "null" {
		return nil, nil
	}
	if len(l.Operations) == 1 {
		op := l.Operations[0]
		return []OperationResult{{Resource: op.Resource, Action: op.Action, Data: l.Result}}, nil
	}
	var wrapped struct {
		Operations []OperationResult `json:"operations"`
	}
	if err := json.Unmarshal(l.Result, &wrapped); err != nil {
		return nil, fmt.Errorf("client: link %s result: %w", l.LinkID, err)
	}
	return wrapped.Operations, nil
}

// CreateLink creates a pending link (POST /v1/links). It always sends an
// Idempotency-Key (req.IdempotencyKey, or a random one) and the same key on
// every retry, so a retry never makes a second link.
func (c *Client) CreateLink(ctx context.Context, req CreateLinkRequest) (*CreatedLink, error) {
	r, err := jsonRequest(http.MethodPost, "/v1/links", req)
	if err != nil {
		return nil, err
	}
	r.idempotencyKey = req.IdempotencyKey
	if r.idempotencyKey == "" {
		r.idempotencyKey = rand.Text()
	}
	r.idempotent = true
	var out CreatedLink
	hdr, err := c.do(ctx, r, &out)
	if err != nil {
		return nil, err
	}
	out.Replayed = hdr.Get("Idempotent-Replayed") == "true"
	return &out, nil
}

// GetLink returns a link (GET /v1/links/{linkId}).
func (c *Client) GetLink(ctx context.Context, linkID string, expand ...Expand) (*Link, error) {
	if linkID == "" {
		return nil, errors.New("client: GetLink needs a link id")
	}
	var out Link
	if _, err := c.do(ctx, c.get("/v1/links/"+url.PathEscape(linkID), url.Values(query{}.expand(expand))), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListLinksParams filters and pages GET /v1/links. Zero fields are left out.
type ListLinksParams struct {
	Status         Status
	IntegrationID  string
	ExternalUserID string
	// Limit is the page size: 1 to 100, default (0) 20.
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
	// Expand adds to each link what it names.
	Expand []Expand
}

func (p ListLinksParams) query() url.Values {
	q := query{}.str("status", string(p.Status)).str("integrationId", p.IntegrationID).
		str("externalUserId", p.ExternalUserID).int("limit", p.Limit).str("cursor", p.Cursor).expand(p.Expand)
	return url.Values(q)
}

// ListLinks returns one page of links, newest first (GET /v1/links).
func (c *Client) ListLinks(ctx context.Context, p ListLinksParams) (*Page[Link], error) {
	var out Page[Link]
	if _, err := c.do(ctx, c.get("/v1/links", p.query()), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Links iterates over every link that p selects, newest first, from
// p.Cursor on, fetching p.Limit at a time. An error ends the iteration.
func (c *Client) Links(ctx context.Context, p ListLinksParams) iter.Seq2[*Link, error] {
	return pages(ctx, p.Cursor, func(ctx context.Context, cursor string) (*Page[Link], error) {
		p.Cursor = cursor
		return c.ListLinks(ctx, p)
	})
}

// CancelLink cancels a link (POST /v1/links/{linkId}/cancel). A pending or
// claimed link is canceled at once; a running one gets CancelRequested and
// fails with CANCELED before its next operation; a finished one answers 409.
func (c *Client) CancelLink(ctx context.Context, linkID string) (*Link, error) {
	if linkID == "" {
		return nil, errors.New("client: CancelLink needs a link id")
	}
	var out Link
	r := &request{method: http.MethodPost, path: "/v1/links/" + url.PathEscape(linkID) + "/cancel", auth: true}
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// get is an authenticated GET.
func (c *Client) get(path string, q url.Values) *request {
	return &request{method: http.MethodGet, path: path, query: q, auth: true, idempotent: true}
}

// TraceEntry is one step of a debug link's session: when it began, how long
// it took, the session attempt, what came of it, the failure code and the
// provider's request ids. It holds no secret, answer or argument.
type TraceEntry struct {
	At                 int64    `json:"at"`
	Step               string   `json:"step"`
	Attempt            int      `json:"attempt"`
	DurationMs         int64    `json:"durationMs"`
	Outcome            string   `json:"outcome"`
	Code               string   `json:"code,omitempty"`
	OperationIndex     *int     `json:"operationIndex,omitempty"`
	Resource           string   `json:"resource,omitempty"`
	Action             string   `json:"action,omitempty"`
	ChallengeType      string   `json:"challengeType,omitempty"`
	ProviderRequestIDs []string `json:"providerRequestIds,omitempty"`
	RetryInMs          int64    `json:"retryInMs,omitempty"`
}

// LinkTrace is the trace of a debug link's session, oldest step first.
type LinkTrace struct {
	LinkID string       `json:"linkId"`
	Status Status       `json:"status"`
	Data   []TraceEntry `json:"data"`
}

// GetLinkTrace returns the trace of a link created with Debug (GET
// /v1/links/{linkId}/trace); a link without Debug is a 409 Error.
func (c *Client) GetLinkTrace(ctx context.Context, linkID string) (*LinkTrace, error) {
	if linkID == "" {
		return nil, errors.New("client: GetLinkTrace needs a link id")
	}
	var out LinkTrace
	if _, err := c.do(ctx, c.get("/v1/links/"+url.PathEscape(linkID)+"/trace", nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}
