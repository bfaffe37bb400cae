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

// Events lists an organization's events in order, after the cursor (a
// position returned earlier; "" for the oldest kept): the log holds their
// order, their records the bodies. An event whose record is gone (past its
// retention) is left out. next is the position after the last event read
// ("" when none was); more says the page was full, so more may follow.
func (s *Store) Events(ctx context.Context, org, after string, limit int) (events []linkflow.StoredEvent, next string, more bool, err error) {
	start := "-"
	if after != "" {
		next, ok := nextStreamID(after)
		if !ok {
			return nil, "", false, fmt.Errorf("%w: bad cursor", linkflow.ErrBadCursor)
		}
		if next == "" {
			return nil, "", false, nil // the last position there can be: nothing follows
		}
		start = next
	}
	msgs, err := s.rdb.XRangeN(ctx, eventsKey(org), start, "+", int64(limit)).Result()
	if err != nil || len(msgs) == 0 {
		return nil, "", false, err
	}
	pipe := s.rdb.Pipeline()
	recs := make([]*redis.MapStringStringCmd, len(msgs))
	for i, m := range msgs {
		id, _ := m.Values["id"].(string)
		recs[i] = pipe.HGetAll(ctx, eventKey(org, id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", false, err
	}
	out := make([]linkflow.StoredEvent, 0, len(msgs))
	for i, m := range msgs {
		r := recs[i].Val()
		if len(r) == 0 {
			continue
		}
		id, _ := m.Values["id"].(string)
		out = append(out, linkflow.StoredEvent{StreamID: m.ID, ID: id, Type: r["type"], LinkID: r["link"],
			WebhookURL: r["url"], Body: []byte(r["body"])})
	}
	return out, msgs[len(msgs)-1].ID, len(msgs) == limit, nil
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

// TryLock takes a named lock for ttl if nobody holds it: background sweeps use
// it so one process does each round.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, sweepLockKey(name), "1", ttl).Result()
}
