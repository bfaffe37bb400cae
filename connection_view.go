package linkflow

import (
	"encoding/json"
	"time"
)

// ConnectionView is the JSON shape of a connection as GET
// /v1/connections/{connectionId} returns it and as the data of a
// connection.* webhook event.
type ConnectionView struct {
	ID              string          `json:"id"`
	IntegrationID   string          `json:"integrationId"`
	ExternalUserID  string          `json:"externalUserId,omitempty"`
	Username        string          `json:"username"`
	DisplayName     string          `json:"displayName,omitempty"`
	Status          ConnStatus      `json:"status"`
	StatusMessage   string          `json:"statusMessage,omitempty"`
	Disabled        bool            `json:"disabled"`
	Metadata        json.RawMessage `json:"metadata"`
	WebhookURL      string          `json:"webhookUrl,omitempty"`
	CreatedAt       *int64          `json:"createdAt"`
	UpdatedAt       *int64          `json:"updatedAt"`
	LastRefreshedAt *int64          `json:"lastRefreshedAt"`
	// RevokedAt and RevokedAtProvider are only set once the connection was
	// deleted.
	RevokedAt         *int64          `json:"revokedAt,omitempty"`
	RevokedAtProvider *bool           `json:"revokedAtProvider,omitempty"`
	LinkIDs           []string        `json:"linkIds"`
	Credentials       CredentialsView `json:"credentials"`
}

// CredentialsView is the credentials object of a ConnectionView. It is always
// present. Redacted is true when the connection holds secrets that this
// response leaves out: accessToken and refreshToken are then absent, while
// tokenType, scope and expiresAt, which are not secret, are shown. A
// connection without credentials (a revoked one) has an object with only
// redacted false and expiresAt null.
type CredentialsView struct {
	Redacted     bool   `json:"redacted"`
	AccessToken  string `json:"accessToken,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	TokenType    string `json:"tokenType,omitempty"`
	Scope        string `json:"scope,omitempty"`
	ExpiresAt    *int64 `json:"expiresAt"`
}

// View builds the public view of c. Secrets are only in it when withSecrets
// is set; the caller decides that from the request's scope and
// include_secrets, and nothing else ever passes true.
func (c *Connection) View(withSecrets bool) ConnectionView {
	v := ConnectionView{
		ID:              c.ID,
		IntegrationID:   c.IntegrationID,
		ExternalUserID:  c.ExternalUserID,
		Username:        c.Username,
		DisplayName:     c.DisplayName,
		Status:          c.Status,
		StatusMessage:   c.StatusMessage,
		Disabled:        c.Disabled,
		Metadata:        c.Metadata,
		WebhookURL:      c.WebhookURL,
		CreatedAt:       Millis(c.CreatedAt),
		UpdatedAt:       Millis(c.UpdatedAt),
		LastRefreshedAt: Millis(c.LastRefreshedAt),
		LinkIDs:         c.LinkIDs,
	}
	if len(v.Metadata) == 0 {
		v.Metadata = json.RawMessage(`{}`)
	}
	if v.LinkIDs == nil {
		v.LinkIDs = []string{}
	}
	if c.Status == ConnRevoked {
		v.RevokedAt = Millis(c.RevokedAt)
		at := c.RevokedAtProvider
		v.RevokedAtProvider = &at
	}
	if c.Unreadable { // held, not shown: they cannot be opened
		v.Credentials.Redacted = true
	}
	if cr := c.Credentials; cr != nil {
		v.Credentials = CredentialsView{TokenType: cr.TokenType, Scope: cr.Scope, ExpiresAt: Millis(cr.ExpiresAt)}
		if withSecrets {
			v.Credentials.AccessToken, v.Credentials.RefreshToken = cr.AccessToken, cr.RefreshToken
		} else {
			v.Credentials.Redacted = true
		}
	}
	return v
}

// ConnectionEventType is the event type for a connection that became
// status s: connection.error or connection.healthy.
func ConnectionEventType(s ConnStatus) string { return "connection." + string(s) }

// NewConnectionEvent builds the event for a connection's status change. The
// data is the connection's view without secrets. id must be unique per event
// and free of "." (it is the webhook-id).
func NewConnectionEvent(id string, c *Connection, at time.Time) (Event, []byte, error) {
	ev := Event{ID: id, Type: ConnectionEventType(c.Status), Timestamp: at.UnixMilli()}
	data, err := json.Marshal(c.View(false))
	if err != nil {
		return ev, nil, err
	}
	ev.Data = data
	body, err := json.Marshal(ev)
	return ev, body, err
}
