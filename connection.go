package linkflow

import (
	"encoding/json"
	"errors"
	"time"
)

// ConnStatus is the health of a connection.
type ConnStatus string

// The statuses of a connection.
const (
	ConnHealthy      ConnStatus = "healthy"
	ConnError        ConnStatus = "error"
	ConnDisconnected ConnStatus = "disconnected"
	ConnRevoked      ConnStatus = "revoked"
)

// Credentials are what a successful login leaves behind at the provider. They
// are secret: sealed at rest and redacted in responses unless explicitly asked
// for.
type Credentials struct {
	AccessToken  string    `json:"accessToken"`
	RefreshToken string    `json:"refreshToken,omitempty"`
	TokenType    string    `json:"tokenType,omitempty"`
	Scope        string    `json:"scope,omitempty"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"`
}

// Connection is the record a successful link leaves behind: one per
// organization, integration and provider username.
type Connection struct {
	ID              string
	OrgID           string
	IntegrationID   string
	Username        string
	ExternalUserID  string
	DisplayName     string
	Status          ConnStatus
	StatusMessage   string
	Disabled        bool
	Metadata        json.RawMessage
	WebhookURL      string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	LastRefreshedAt time.Time
	LinkIDs         []string
	Credentials     *Credentials
	// RevokedAt is when the connection was deleted (status revoked), and
	// RevokedAtProvider whether the provider confirmed the revocation.
	RevokedAt         time.Time
	RevokedAtProvider bool
	Version           int64
}

// ConnectionFilter narrows a connection listing. Empty fields match
// everything.
type ConnectionFilter struct {
	ExternalUserID string
	IntegrationID  string
	Status         ConnStatus
}

// ConnectionPatch is a customer's change to a connection. Nil fields stay
// as they are.
type ConnectionPatch struct {
	// Metadata replaces the metadata as a whole; it must be a JSON object of
	// at most MaxConnectionMetadata bytes.
	Metadata    json.RawMessage
	DisplayName *string
	Disabled    *bool
}

// ErrConnectionRevoked is returned for a change to a revoked connection.
var ErrConnectionRevoked = errors.New("connection is revoked")

// SecretRead is one read of a connection's secrets: who, when, from where.
type SecretRead struct {
	At time.Time
	// Subject is the principal ("key:<id>" or "user:<email>") and KeyID the
	// API key it acted with.
	Subject   string
	KeyID     string
	Address   string
	RequestID string
}
