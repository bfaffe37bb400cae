package linkflow

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// Scopes an API key or access token can carry.
const (
	ScopeLinksRead          = "links:read"
	ScopeLinksWrite         = "links:write"
	ScopeConnectionsRead    = "connections:read"
	ScopeConnectionsSecrets = "connections:secrets"
)

// AllScopes are the scopes of an API key created without a narrower list.
var AllScopes = []string{ScopeLinksRead, ScopeLinksWrite, ScopeConnectionsRead, ScopeConnectionsSecrets}

// Principal is who makes an API request: an API key or an access token,
// acting for one organization with some scopes.
type Principal struct {
	OrgID   string
	KeyID   string // the API key (or the key a token was exchanged for)
	Subject string // "key:<id>" or "user:<email>"
	Scopes  []string
	// AccessToken is set when the secret was an access token, not an API
	// key: only API keys may be exchanged for tokens.
	AccessToken bool
	// UserVersion is, for a user's token, the version of the user it was
	// issued for: a change of the user's password or organizations, or
	// RevokeUserTokens, moves the version on and the token stops working.
	UserVersion int64
}

// Can reports whether p carries scope.
func (p *Principal) Can(scope string) bool { return slices.Contains(p.Scopes, scope) }

// UserEmail is the email of the user p acts as (an access token from the
// password grant), or "" for an API key and its tokens.
func (p *Principal) UserEmail() string {
	email, _ := strings.CutPrefix(p.Subject, "user:")
	if email == p.Subject {
		return ""
	}
	return email
}

// UserID is the id of the user with email: "usr_" and 24 hex digits derived
// from the email, so it stays the same when the user is changed (linkflow
// users create again) and needs no record of its own.
func UserID(email string) string {
	sum := sha256.Sum256([]byte("linkflow user\x00" + strings.ToLower(email)))
	return "usr_" + hex.EncodeToString(sum[:12])
}
