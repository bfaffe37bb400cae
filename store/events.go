package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/linkflow/linkflow"

	"github.com/redis/go-redis/v9"
)

func parseEvent(m redis.XMessage) linkflow.StoredEvent {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	return linkflow.StoredEvent{StreamID: m.ID, ID: str("id"), Type: str("type"), LinkID: str("link"),
		WebhookURL: str("url"), Body: []byte(str("body"))}
}

// Event returns one event of an organization by its position in the log.
func (s *Store) Event(ctx context.Context, org, streamID string) (*linkflow.StoredEvent, error) {
	msgs, err := s.rdb.XRange(ctx, eventsKey(org), streamID, streamID).Result()
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, linkflow.ErrNotFound
	}
	ev := parseEvent(msgs[0])
	return &ev, nil
}

// Events lists an organization's events in order, after the cursor (a
// position returned earlier; "" for the oldest kept).
func (s *Store) Events(ctx context.Context, org, after string, limit int) ([]linkflow.StoredEvent, error) {
	start := "-"
	if after != "" {
		next, ok := nextStreamID(after)
		if !ok {
			return nil, fmt.Errorf("%w: bad cursor", linkflow.ErrBadCursor)
		}
		if next == "" {
			return nil, nil // the last position there can be: nothing follows
		}
		start = next
	}
	msgs, err := s.rdb.XRangeN(ctx, eventsKey(org), start, "+", int64(limit)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]linkflow.StoredEvent, len(msgs))
	for i, m := range msgs {
		out[i] = parseEvent(m)
	}
	return out, nil
}

func validStreamID(id string) bool {
	_, _, ok := parseStreamID(id)
	return ok
}

func parseStreamID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// nextStreamID is the first stream id after id, "" when id is the last
// there can be. Redis refuses an exclusive range start at the largest id,
// so the range starts inclusively at the next one.
func nextStreamID(id string) (string, bool) {
	ms, seq, ok := parseStreamID(id)
	switch {
	case !ok:
		return "", false
	case seq < math.MaxUint64:
		return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10), true
	case ms < math.MaxUint64:
		return strconv.FormatUint(ms+1, 10) + "-0", true
	}
	return "", true
}

// OutboxEntry is a message that was recorded in Redis but not yet confirmed
// by JetStream: a claim ("claim:<linkId>") or an event
// ("event:<eventId>:<streamId>").
type OutboxEntry struct {
	OrgID    string
	Member   string
	Kind     string // "claim" or "event"
	LinkID   string // claims
	EventID  string // events
	StreamID string // events
}

// ClaimOutboxMember and EventOutboxMember name outbox entries.
func ClaimOutboxMember(linkID string) string { return "claim:" + linkID }

// EventOutboxMember names the outbox entry of an event.
func EventOutboxMember(eventID, streamID string) string { return "event:" + eventID + ":" + streamID }

func parseOutbox(org, member string) OutboxEntry {
	e := OutboxEntry{OrgID: org, Member: member}
	kind, rest, _ := strings.Cut(member, ":")
	e.Kind = kind
	switch kind {
	case "claim":
		e.LinkID = rest
	case "event":
		e.EventID, e.StreamID, _ = strings.Cut(rest, ":")
	}
	return e
}

// DueOutbox returns an organization's outbox entries older than age and
// pushes them back by age, so that concurrent relays do not all republish
// the same entries.
func (s *Store) DueOutbox(ctx context.Context, org string, age time.Duration, limit int) ([]OutboxEntry, error) {
	now := s.now()
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: outboxKey(org), Start: "-inf",
		Stop: strconv.FormatInt(ms(now.Add(-age)), 10), ByScore: true, Count: int64(limit)}).Result()
	if err != nil || len(members) == 0 {
		return nil, err
	}
	zs := make([]redis.Z, len(members))
	out := make([]OutboxEntry, len(members))
	for i, m := range members {
		zs[i] = redis.Z{Score: float64(ms(now)), Member: m}
		out[i] = parseOutbox(org, m)
	}
	if err := s.rdb.ZAddXX(ctx, outboxKey(org), zs...).Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// AckOutbox removes entries JetStream confirmed, in one pipeline.
func (s *Store) AckOutbox(ctx context.Context, entries ...OutboxEntry) error {
	if len(entries) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, e := range entries {
		pipe.ZRem(ctx, outboxKey(e.OrgID), e.Member)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// LinkIntegration returns the integration of a link.
func (s *Store) LinkIntegration(ctx context.Context, org, id string) (string, error) {
	v, err := s.rdb.HGet(ctx, linkKey(org, id), fIntegration).Result()
	if errors.Is(err, redis.Nil) {
		return "", linkflow.ErrNotFound
	}
	return v, err
}

// TryLock takes a named lock for ttl if nobody holds it: background sweeps use
// it so one process does each round.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, sweepLockKey(name), "1", ttl).Result()
}
