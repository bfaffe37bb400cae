package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
)

// Backlog sums the work waiting in every shard: the outbox, the webhook
// retry schedule, the expiry and retention schedules. One pipeline of
// counts and first entries, cheap enough for a metrics scrape.
func (s *Store) Backlog(ctx context.Context) (*linkflow.Backlog, error) {
	pipe := s.rdb.Pipeline()
	type shardCmds struct {
		outbox, retries, pending, kept *redis.IntCmd
		outboxFirst, retryFirst        *redis.ZSliceCmd
	}
	cmds := make([]shardCmds, Shards)
	for sh := range Shards {
		cmds[sh] = shardCmds{
			outbox:      pipe.ZCard(ctx, s.k.outbox(sh)),
			outboxFirst: pipe.ZRangeWithScores(ctx, s.k.outbox(sh), 0, 0),
			retries:     pipe.ZCard(ctx, s.k.retrySchedule(sh)),
			retryFirst:  pipe.ZRangeWithScores(ctx, s.k.retrySchedule(sh), 0, 0),
			pending:     pipe.ZCard(ctx, s.k.expiring(sh)),
			kept:        pipe.ZCard(ctx, s.k.retention(sh)),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	b := &linkflow.Backlog{}
	earliest := func(t *time.Time, z []redis.Z) {
		if len(z) == 0 {
			return
		}
		if at := time.UnixMilli(int64(z[0].Score)); t.IsZero() || at.Before(*t) {
			*t = at
		}
	}
	for _, c := range cmds {
		b.OutboxEntries += c.outbox.Val()
		b.RetryScheduled += c.retries.Val()
		b.PendingLinks += c.pending.Val()
		b.KeptLinks += c.kept.Val()
		earliest(&b.OutboxOldest, c.outboxFirst.Val())
		earliest(&b.RetryNextDue, c.retryFirst.Val())
	}
	return b, nil
}

// RetryingDeliveries returns the delivery states of up to perShard entries
// of each shard's part of the retry schedule, the soonest due first: a
// sample of the deliveries in flight or waiting for a retry, from which an
// operator sees which receivers fail. Two pipelines.
func (s *Store) RetryingDeliveries(ctx context.Context, perShard int) ([]*linkflow.Delivery, error) {
	if perShard <= 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	entries := make([]*redis.StringSliceCmd, Shards)
	for sh := range Shards {
		entries[sh] = pipe.ZRange(ctx, s.k.retrySchedule(sh), 0, int64(perShard-1))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("retrying deliveries: %w", err)
	}
	var refs []linkflow.DeliveryRef
	states := s.rdb.Pipeline()
	var cmds []*redis.MapStringStringCmd
	for _, c := range entries {
		for _, m := range c.Val() {
			ref, ok := parseDeliveryRef(m)
			if !ok || !validID(ref.EventID) {
				continue
			}
			refs = append(refs, ref)
			cmds = append(cmds, states.HGetAll(ctx, s.k.delivery(ref.EventID)))
		}
	}
	if len(refs) == 0 {
		return nil, nil
	}
	if _, err := states.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("retrying deliveries: %w", err)
	}
	out := make([]*linkflow.Delivery, 0, len(refs))
	for i, ref := range refs {
		if m := cmds[i].Val(); len(m) > 0 {
			out = append(out, parseDelivery(ref.OrgID, ref.EventID, m))
		}
	}
	return out, nil
}
