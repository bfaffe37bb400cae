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
	// Unreadable says the connection holds credentials that cannot be
	// opened: Credentials is nil. UnknownKey names the encryption key they
	// were sealed with when this process is not given it (a key roll under
	// way, or a key retired too early); empty, they are damaged. It can
	// still be read without secrets and renewed by a link; deleted only when
	// damaged (a process given the key could revoke them at the provider).
	Unreadable bool
	UnknownKey string
	// RevokedAt is when the connection was deleted (status revoked), and
	// RevokedAtProvider whether the provider confirmed the revocation.
	RevokedAt         time.Time
	RevokedAtProvider bool
	Version           int64
	// Refreshes counts the refresh outcomes committed: the generation that
	// reads waiting for another's refresh watch. LastLinkID is the link that
	// last made or renewed the connection.
	Refreshes  int64
	LastLinkID string
}

// RefreshPolicy says when reading a connection refreshes its credentials.
type RefreshPolicy string

// The refresh policies of GET /v1/connections/{id}?refresh_policy=.
const (
	// RefreshAuto refreshes when the access token has expired or expires
	// within a minute. The default.
	RefreshAuto RefreshPolicy = "auto"
	// RefreshForce refreshes whatever the expiry. A read that arrives while
	// another refresh of the same connection is in flight shares that
	// refresh's outcome instead of forcing one more.
	RefreshForce RefreshPolicy = "force"
	// RefreshNone never refreshes.
	RefreshNone RefreshPolicy = "none"
)

// Valid reports whether p is a known policy.
func (p RefreshPolicy) Valid() bool { return p == RefreshAuto || p == RefreshForce || p == RefreshNone }

// ConnectionLock is what asking for a connection's lock found: Token (the
// fencing token) and the connection when the caller got it; Token "" when
// another holds it. Refreshes is how many refreshes the connection
// committed either way.
type ConnectionLock struct {
	Token     string
	Refreshes int64
	Conn      *Connection
}

// RefreshCommit is the outcome of one refresh of a connection's credentials,
// committed under the connection's lock.
type RefreshCommit struct {
	// Token is the lock's fencing token, LastLinkID the connection's last
	// link as the lock found it: a link that renewed the connection since
	// brought newer credentials, which the refresh must not overwrite.
	Token      string
	LastLinkID string
	At         time.Time
	// Credentials are the fresh credentials; nil when the refresh failed,
	// and StatusMessage says why.
	Credentials   *Credentials
	StatusMessage string
	// Event is the connection.* event recorded when the status changes
	// between healthy and error (its body and its message).
	EventID   string
	EventType string
	EventBody []byte
	Message   Message
	// Version is the connection's version EventBody was built from: a
	// connection changed since (a PATCH during the provider's call) is
	// ErrChanged, nothing committed, when an event is due. 0 takes any.
	Version int64
}

// RevokeCommit is the end of a connection, committed under its lock: its
// credentials deleted, the record kept as a tombstone.
type RevokeCommit struct {
	Token         string
	LastLinkID    string
	At            time.Time
	AtProvider    bool
	StatusMessage string
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

// Limits on what a connection keeps.
const (
	// MaxConnectionMetadata bounds a connection's metadata (compact JSON).
	MaxConnectionMetadata = 16 << 10
	// SecretReadsKept is how many secret reads a connection remembers.
	SecretReadsKept = 1000
)

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
