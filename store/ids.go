package store

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/google/uuid"
)

// timeOrderedID returns prefix + 32 hex characters of a UUIDv7: ids sort by
// creation time, which list pagination relies on.
func timeOrderedID(prefix string) string {
	u, err := uuid.NewV7()
	if err != nil {
		u = uuid.New()
	}
	return prefix + strings.ReplaceAll(u.String(), "-", "")
}

// randomToken returns prefix + n random bytes in hex.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NewLinkID returns a new link id ("link_...").
func NewLinkID() string { return timeOrderedID("link_") }

// NewConnectionID returns a new connection id ("conn_...").
func NewConnectionID() string { return timeOrderedID("conn_") }

// NewOrgID returns a new organization id ("org_...").
func NewOrgID() string { return timeOrderedID("org_") }

// NewClaimCode returns a new claim code ("clm_...", 128 random bits).
func NewClaimCode() string { return randomToken("clm_", 16) }

// NewAPIKey returns a new API key ("lfk_...", 192 random bits).
func NewAPIKey() string { return randomToken("lfk_", 24) }
