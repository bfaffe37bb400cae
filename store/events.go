package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
)

// EventRecords returns the records of the events with ids (their webhook
// bodies, and the stream sequence JetStream first stored each at, once the
// publisher recorded it), in one pipeline; an event whose record is gone
// (past its retention) is left out. The order of an organization's events,
// and their cursor, is the events stream's (outbox.Feed).
func (s *Store) EventRecords(ctx context.Context, ids []string) (map[string]linkflow.StoredEvent, error) {
	out := make(map[string]linkflow.StoredEvent, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	pipe := s.pipeline()
	recs := make([]*redis.Cmd, len(ids))
	for i, id := range ids {
		if validID(id) {
			recs[i] = pipe.Script(ctx, eventReadScript, []string{s.k.event(id), s.k.eventLink(id)})
		}
	}
	if err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, id := range ids {
		if recs[i] == nil {
			continue
		}
		v, err := recs[i].Result()
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", id, err)
		}
		if r := pairsToMap(v); len(r) > 0 {
			out[id] = storedEvent(id, r)
		}
	}
	return out, nil
}

var eventReadScript = script("event_read")

func storedEvent(id string, r map[string]string) linkflow.StoredEvent {
	seq, _ := strconv.ParseUint(r["seq"], 10, 64)
	return linkflow.StoredEvent{ID: id, Seq: seq, Type: r["type"], LinkID: r["link"], WebhookURL: r["url"], Body: []byte(r["body"])}
}

// TryLock takes a named lock for ttl if nobody holds it: background sweeps use
// it so one process does each round.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, s.k.sweepLock(name), "1", ttl).Result()
}
