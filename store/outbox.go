package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
)

// The outbox of an organization is two keys on its slot: a sorted set of
// message ids by the time they are due for publishing (again), and a hash of
// the messages by id. A script that changes state records its message in
// both, in the same step; the message itself is built in Go (package
// outbox) and handed to the script encoded (encodeMessage).

// encodeMessage is a message as the outbox keeps it: the subject, a newline
// (which a subject cannot contain), the payload.
func encodeMessage(m linkflow.Message) string { return m.Subject + "\n" + string(m.Data) }

func decodeMessage(org, id, v string) (linkflow.Message, bool) {
	subject, data, ok := strings.Cut(v, "\n")
	if !ok || subject == "" {
		return linkflow.Message{}, false
	}
	return linkflow.Message{Subject: subject, ID: id, Data: []byte(data), Outbox: org}, true
}

// DueOutbox returns messages recorded at least age ago and not confirmed, of
// every organization, up to limit, and pushes them back by age, so that
// concurrent relays do not all publish the same ones.
func (s *Store) DueOutbox(ctx context.Context, age time.Duration, limit int) ([]linkflow.Message, error) {
	orgs, err := s.Orgs(ctx)
	if err != nil {
		return nil, err
	}
	var out []linkflow.Message
	var errs []error
	for _, org := range orgs {
		if len(out) >= limit {
			break
		}
		msgs, err := s.dueOutbox(ctx, org, age, limit-len(out))
		errs = append(errs, err)
		out = append(out, msgs...)
	}
	return out, errors.Join(errs...)
}

func (s *Store) dueOutbox(ctx context.Context, org string, age time.Duration, limit int) ([]linkflow.Message, error) {
	now := s.now()
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: outboxKey(org), Start: "-inf",
		Stop: strconv.FormatInt(ms(now.Add(-age)), 10), ByScore: true, Count: int64(limit)}).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	zs := make([]redis.Z, len(ids))
	for i, id := range ids {
		zs[i] = redis.Z{Score: float64(ms(now)), Member: id}
	}
	pipe.ZAddXX(ctx, outboxKey(org), zs...)
	vals := pipe.HMGet(ctx, outboxMessagesKey(org), ids...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("due outbox of %s: %w", org, err)
	}
	out := make([]linkflow.Message, 0, len(ids))
	var orphans []string
	for i, v := range vals.Val() {
		str, _ := v.(string)
		m, ok := decodeMessage(org, ids[i], str)
		if !ok {
			orphans = append(orphans, ids[i]) // nothing to publish: forget it
			continue
		}
		out = append(out, m)
	}
	if len(orphans) > 0 {
		_ = s.AckOutbox(ctx, messagesOf(org, orphans)...)
	}
	return out, nil
}

func messagesOf(org string, ids []string) []linkflow.Message {
	out := make([]linkflow.Message, len(ids))
	for i, id := range ids {
		out[i] = linkflow.Message{ID: id, Outbox: org}
	}
	return out
}

// AckOutbox forgets messages JetStream confirmed, in one round trip.
func (s *Store) AckOutbox(ctx context.Context, msgs ...linkflow.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, m := range msgs {
		if m.Outbox == "" {
			continue
		}
		pipe.ZRem(ctx, outboxKey(m.Outbox), m.ID)
		pipe.HDel(ctx, outboxMessagesKey(m.Outbox), m.ID)
	}
	_, err := pipe.Exec(ctx)
	return err
}
