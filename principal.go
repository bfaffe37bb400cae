package linkflow

import "slices"

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
