package store

import (
	"crypto/rand"
	"crypto/sha256"
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

// newLinkID returns a new link id ("link_..."), time-ordered, in shard.
func newLinkID(shard int) string { return withShard(timeOrderedID("link_"), shard) }

// connectionID is the id of the connection of an account (an
// organization's user at an integration): the same account always has the
// same connection, so a link can name its connection without reading it.
// It ends in the account's shard.
func connectionID(org, integration, username string) string {
	sum := sha256.Sum256([]byte(org + "\x00" + integration + "\x00" + username))
	return withShard("conn_"+hex.EncodeToString(sum[:16]), shardFor(org, integration, username))
}

// NewOrgID returns a new organization id ("org_...").
func NewOrgID() string { return timeOrderedID("org_") }

// NewClaimCode returns a new claim code ("clm_...", 128 random bits).
func NewClaimCode() string { return randomToken("clm_", 16) }

// NewAPIKey returns a new API key ("lfk_...", 192 random bits).
func NewAPIKey() string { return randomToken("lfk_", 24) }
