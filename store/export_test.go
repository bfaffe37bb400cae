package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The store's own key functions, for its external tests: they never spell a
// Redis key by hand.
var (
	KeyLink          = linkKey
	KeyLinkPassword  = linkCredKey
	KeyLinksIndex    = linksIndexKey
	KeyEvent         = eventKey
	KeyRetrySchedule = retryScheduleKey
	MemberOf         = refMember
)

// IndexedLinks is how many links an organization's main index lists.
func (s *Store) IndexedLinks(ctx context.Context, org string) (int64, error) {
	return s.rdb.ZCard(ctx, linksIndexKey(org)).Result()
}

// Redis returns the store's client, for tests that look under the hood.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }
