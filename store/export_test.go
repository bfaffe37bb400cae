package store

import (
	"context"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/redis/go-redis/v9"
)

// The store's own key functions, for its external tests: they never spell a
// Redis key by hand.
func (s *Store) KeyLink(id string) string         { return s.k.link(id) }
func (s *Store) KeyLinkPassword(id string) string { return s.k.linkCred(id) }
func (s *Store) KeyLinkLease(id string) string    { return s.k.linkLease(id) }
func (s *Store) KeyLinkInput(id string) string    { return s.k.linkInput(id) }
func (s *Store) KeyEvent(id string) string        { return s.k.event(id) }
func (s *Store) KeyRateLimit(name string) string  { return s.k.rateLimit(bucketName(name)) }

// KeyRetrySchedule is the part of the retry schedule an event's delivery
// waits in.
func (s *Store) KeyRetrySchedule(eventID string) string { return s.k.retrySchedule(shardOf(eventID)) }
func (s *Store) KeyDelivery(eventID string) string      { return s.k.delivery(eventID) }
func (s *Store) KeyDeliveryLog(eventID string) string   { return s.k.deliveryLog(eventID) }
func (s *Store) KeyTrace(id string) string              { return s.k.linkTrace(id) }
func (s *Store) KeyConnLinks(id string) string          { return s.k.connLinks(id) }
func (s *Store) KeyConn(id string) string               { return s.k.conn(id) }
func (s *Store) KeyConnLock(id string) string           { return s.k.connLock(id) }

// KeyAPIKey is the record of an API key.
func (s *Store) KeyAPIKey(secret string) string { return s.k.apiKey(hashHex(secret)) }

// KeyOutboxMessages is the hash of messages of the outbox named name
// (linkflow.Message.Outbox).
func (s *Store) KeyOutboxMessages(name string) string {
	sh, _ := outboxShard(name)
	return s.k.outboxMessages(sh)
}

// KeyIdempotency is the record of an organization's Idempotency-Key.
func (s *Store) KeyIdempotency(org, key string) string {
	return s.k.idempotency(shardFor(org, key), org, hashHex(key))
}

var MemberOf = refMember

// IndexedLinks is how many links an organization's main index lists (every
// shard's part).
func (s *Store) IndexedLinks(ctx context.Context, org string) (int64, error) {
	var n int64
	for sh := range Shards {
		c, err := s.rdb.ZCard(ctx, s.k.linksIndex(sh, org)).Result()
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

// Redis returns the store's client, for tests that look under the hood.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// DeferConnectionWrites makes finished links leave their connection writes
// to DueOutbox (on), as a process that stopped between the two steps does,
// or write them again (off).
func (s *Store) DeferConnectionWrites(on bool) { s.deferApply = on }

// DeferAnnouncements makes finished links that repaired their connection
// leave its connection.healthy event (and their own) to DueOutbox (on), as
// a process that stopped after the write does.
func (s *Store) DeferAnnouncements(on bool) { s.deferAnnounce = on }

// OnSweepStep has f called as the sweeper's retention round reaches a step
// ("due", "held"), where a test lets a session act.
func (s *Store) OnSweepStep(f func(step string)) { s.sweepStep = f }

// SetRetentionDue moves l's entry in the retention schedule to at, where an
// earlier release's claim left it (its creation's place).
func (s *Store) SetRetentionDue(ctx context.Context, l *linkflow.Link, at time.Time) error {
	return s.rdb.ZAddXX(ctx, s.k.retention(shardOf(l.ID)), redis.Z{Score: float64(ms(at)),
		Member: retentionMember(l.OrgID, l.ID, l.IntegrationID, l.ExternalUserID)}).Err()
}

// RetentionEntries are the members of l's shard's retention schedule that
// name l, and the one its creation gave it.
func (s *Store) RetentionEntries(ctx context.Context, l *linkflow.Link) (got []string, want string, err error) {
	all, err := s.rdb.ZRange(ctx, s.k.retention(shardOf(l.ID)), 0, -1).Result()
	for _, m := range all {
		if memberID(m) == l.ID {
			got = append(got, m)
		}
	}
	return got, retentionMember(l.OrgID, l.ID, l.IntegrationID, l.ExternalUserID), err
}

// SlotHolders are the holders of an integration's fleet-wide slots.
func (s *Store) SlotHolders(ctx context.Context, integration string) ([]string, error) {
	return s.rdb.ZRange(ctx, s.k.semaphore(integration), 0, -1).Result()
}

// KeyOutboxOf is the outbox (sorted set of due entries) of a link's shard.
func (s *Store) KeyOutboxOf(linkID string) string { return s.k.outbox(shardOf(linkID)) }

// KeyOrgAPIKeys is the index of an organization's API keys.
func (s *Store) KeyOrgAPIKeys(org string) string { return s.k.orgAPIKeys(org) }
