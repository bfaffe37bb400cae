package client

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
)

// ConnectionStatus is a connection's health.
type ConnectionStatus string

// The statuses of a connection. linkflow sets healthy, error and revoked;
// disconnected is reserved.
const (
	ConnectionHealthy      ConnectionStatus = "healthy"
	ConnectionError        ConnectionStatus = "error"
	ConnectionDisconnected ConnectionStatus = "disconnected"
	ConnectionRevoked      ConnectionStatus = "revoked"
)

// RefreshPolicy says when GetConnection refreshes the credentials.
type RefreshPolicy string

// Refresh policies. RefreshAuto (linkflow's default) refreshes when the
// access token has expired or expires within a minute; RefreshForce always;
// RefreshNone never.
const (
	RefreshAuto  RefreshPolicy = "auto"
	RefreshForce RefreshPolicy = "force"
	RefreshNone  RefreshPolicy = "none"
)

// Connection is what a successful link leaves: the end user's login at the
// provider, with credentials linkflow keeps refreshed.
type Connection struct {
	ID             string `json:"id"`
	IntegrationID  string `json:"integrationId"`
	ExternalUserID string `json:"externalUserId,omitempty"`
	// Username is the provider username; one connection per organization,
	// integration and username.
	Username    string           `json:"username"`
	DisplayName string           `json:"displayName,omitempty"`
	Status      ConnectionStatus `json:"status"`
	// StatusMessage says why the status is error or revoked.
	StatusMessage string `json:"statusMessage,omitempty"`
	// Disabled connections are never refreshed.
	Disabled bool `json:"disabled"`
	// Metadata is yours, set with UpdateConnection: a JSON object.
	Metadata json.RawMessage `json:"metadata"`
	// WebhookURL gets connection events: the webhook URL of the link that
	// made or last renewed it.
	WebhookURL      string `json:"webhookUrl,omitempty"`
	CreatedAt       *int64 `json:"createdAt"`
	UpdatedAt       *int64 `json:"updatedAt"`
	LastRefreshedAt *int64 `json:"lastRefreshedAt"`
	// RevokedAt (0 until then) and RevokedAtProvider are set once the
	// connection was deleted; RevokedAtProvider says whether the provider
	// confirmed the revocation.
	RevokedAt         int64 `json:"revokedAt,omitempty"`
	RevokedAtProvider bool  `json:"revokedAtProvider,omitempty"`
	// LinkIDs are the links that made or renewed it, oldest first (the
	// last 100).
	LinkIDs     []string              `json:"linkIds"`
	Credentials ConnectionCredentials `json:"credentials"`
	// Integration is the integration's catalog entry, when asked for with
	// ExpandIntegration.
	Integration *Integration `json:"integration,omitempty"`
}

// ConnectionCredentials are a connection's credentials. AccessToken and
// RefreshToken are only there when asked for with IncludeSecrets; Redacted
// says the answer left them out.
type ConnectionCredentials struct {
	Redacted     bool   `json:"redacted"`
	AccessToken  string `json:"accessToken,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	TokenType    string `json:"tokenType,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// ExpiresAt is when the access token expires; nil when unknown or
	// when there are no credentials (a revoked connection).
	ExpiresAt *int64 `json:"expiresAt"`
}

// GetConnectionParams are the options of GET /v1/connections/{connectionId}.
type GetConnectionParams struct {
	// IncludeSecrets returns the access and refresh tokens. It needs the
	// connections:secrets scope (403 otherwise) and is recorded (see
	// ListConnectionSecretReads).
	IncludeSecrets bool
	// RefreshPolicy: default (empty) linkflow's, auto.
	RefreshPolicy RefreshPolicy
	// Expand adds to the connection what it names.
	Expand []Expand
}

// GetConnection returns a connection, refreshing its credentials as
// p.RefreshPolicy says (GET /v1/connections/{connectionId}). A failed
// refresh is not an error: the connection comes back with status error.
func (c *Client) GetConnection(ctx context.Context, connectionID string, p GetConnectionParams) (*Connection, error) {
	if connectionID == "" {
		return nil, errors.New("client: GetConnection needs a connection id")
	}
	q := query{}.str("refresh_policy", string(p.RefreshPolicy)).expand(p.Expand)
	if p.IncludeSecrets {
		q = q.str("include_secrets", strconv.FormatBool(true))
	}
	var out Connection
	if _, err := c.do(ctx, c.get("/v1/connections/"+url.PathEscape(connectionID), url.Values(q)), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListConnectionsParams filters and pages GET /v1/connections. Zero fields
// are left out.
type ListConnectionsParams struct {
	ExternalUserID string
	IntegrationID  string
	Status         ConnectionStatus
	// Limit is the page size: 1 to 100, default (0) 20.
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
	// Expand adds to each connection what it names.
	Expand []Expand
}

func (p ListConnectionsParams) query() url.Values {
	return url.Values(query{}.str("externalUserId", p.ExternalUserID).str("integrationId", p.IntegrationID).
		str("status", string(p.Status)).int("limit", p.Limit).str("cursor", p.Cursor).expand(p.Expand))
}

// ListConnections returns one page of connections, newest first,
// credentials redacted (GET /v1/connections).
func (c *Client) ListConnections(ctx context.Context, p ListConnectionsParams) (*Page[Connection], error) {
	var out Page[Connection]
	if _, err := c.do(ctx, c.get("/v1/connections", p.query()), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Connections iterates over every connection that p selects, newest first,
// from p.Cursor on. An error ends the iteration.
func (c *Client) Connections(ctx context.Context, p ListConnectionsParams) iter.Seq2[*Connection, error] {
	return pages(ctx, p.Cursor, func(ctx context.Context, cursor string) (*Page[Connection], error) {
		p.Cursor = cursor
		return c.ListConnections(ctx, p)
	})
}

// ConnectionPatch changes a connection. Nil fields stay as they are.
type ConnectionPatch struct {
	// Metadata replaces the whole metadata object: a map, or a struct that
	// marshals to an object (at most 16 KiB of JSON). An empty map clears
	// it; a nil one (a nil map, slice or pointer in the interface too)
	// leaves it as it is.
	Metadata any `json:"metadata,omitzero"`
	// DisplayName sets the display name; a pointer to "" clears it.
	DisplayName *string `json:"displayName,omitempty"`
	// Disabled connections are never refreshed.
	Disabled *bool `json:"disabled,omitempty"`
}

// UpdateConnection changes a connection's metadata, display name or
// disabled flag (PATCH /v1/connections/{connectionId}). A revoked
// connection answers 409. It needs links:write and connections:read.
func (c *Client) UpdateConnection(ctx context.Context, connectionID string, patch ConnectionPatch) (*Connection, error) {
	if connectionID == "" {
		return nil, errors.New("client: UpdateConnection needs a connection id")
	}
	if v := reflect.ValueOf(patch.Metadata); patch.Metadata != nil &&
		(v.Kind() == reflect.Map || v.Kind() == reflect.Slice || v.Kind() == reflect.Pointer) && v.IsNil() {
		// A typed nil in the interface would marshal to null, which
		// clears the metadata.
		patch.Metadata = nil
	}
	r, err := jsonRequest(http.MethodPatch, "/v1/connections/"+url.PathEscape(connectionID), patch)
	if err != nil {
		return nil, err
	}
	r.idempotent = true
	var out Connection
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteConnection revokes a connection (DELETE
// /v1/connections/{connectionId}): at the provider when it can, and in
// linkflow, which keeps a tombstone with status revoked and returns it.
// Deleting again returns the tombstone.
func (c *Client) DeleteConnection(ctx context.Context, connectionID string) (*Connection, error) {
	if connectionID == "" {
		return nil, errors.New("client: DeleteConnection needs a connection id")
	}
	r := &request{method: http.MethodDelete, path: "/v1/connections/" + url.PathEscape(connectionID), auth: true, idempotent: true}
	var out Connection
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SecretRead is one read of a connection's secrets.
type SecretRead struct {
	At int64 `json:"at"`
	// Subject is "key:<keyId>" or "user:<email>".
	Subject   string `json:"subject"`
	KeyID     string `json:"keyId,omitempty"`
	Address   string `json:"address,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// SecretReads are the recorded reads of a connection's secrets, newest
// first.
type SecretReads struct {
	ConnectionID string       `json:"connectionId"`
	Data         []SecretRead `json:"data"`
}

// ListConnectionSecretReads returns who read a connection's secrets, newest
// first (GET /v1/connections/{connectionId}/secret-reads). limit is 1 to
// 1000; 0 means linkflow's default, 100.
func (c *Client) ListConnectionSecretReads(ctx context.Context, connectionID string, limit int) (*SecretReads, error) {
	if connectionID == "" {
		return nil, errors.New("client: ListConnectionSecretReads needs a connection id")
	}
	q := url.Values(query{}.int("limit", limit))
	var out SecretReads
	if _, err := c.do(ctx, c.get("/v1/connections/"+url.PathEscape(connectionID)+"/secret-reads", q), &out); err != nil {
		return nil, err
	}
	return &out, nil
}
