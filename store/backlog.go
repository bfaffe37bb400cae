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
// counts and first entries, cheap enough for a metrics scrape. With a
// sample above zero it also reads the delivery states of up to sample
// entries of each shard's part of the retry schedule (two more pipelines).
func (s *Store) Backlog(ctx context.Context, sample int) (*linkflow.Backlog, error) {
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
	if b.RetryScheduled > 0 && sample > 0 {
		var err error
		if b.Retrying, err = s.retrying(ctx, sample); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// retrying returns the delivery states of up to perShard entries of each
// shard's part of the retry schedule, the soonest due first, each with
// NextAt set to when the schedule has it due.
func (s *Store) retrying(ctx context.Context, perShard int) ([]*linkflow.Delivery, error) {
	pipe := s.rdb.Pipeline()
	entries := make([]*redis.ZSliceCmd, Shards)
	for sh := range Shards {
		entries[sh] = pipe.ZRangeWithScores(ctx, s.k.retrySchedule(sh), 0, int64(perShard-1))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("retrying deliveries: %w", err)
	}
	var refs []linkflow.DeliveryRef
	var due []time.Time
	states := s.rdb.Pipeline()
	var cmds []*redis.MapStringStringCmd
	for _, c := range entries {
		for _, z := range c.Val() {
			m, _ := z.Member.(string)
			ref, ok := parseDeliveryRef(m)
			if !ok || !validID(ref.EventID) {
				continue
			}
			refs = append(refs, ref)
			due = append(due, time.UnixMilli(int64(z.Score)))
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
			d := parseDelivery(ref.OrgID, ref.EventID, m)
			d.NextAt = due[i]
			out = append(out, d)
		}
	}
	return out, nil
}
