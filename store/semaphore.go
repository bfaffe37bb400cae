package store

import (
	"context"
	"time"

	"github.com/linkflow/linkflow"

	"github.com/redis/go-redis/v9"
)

var semAcquireScript = script("sem_acquire")

// AcquireSlot takes one of limit fleet-wide slots of an integration for
// holder, held for ttl unless renewed. It reports false when all are taken.
func (s *Store) AcquireSlot(ctx context.Context, integration, holder string, limit int, ttl time.Duration) (bool, error) {
	now := s.now()
	n, err := semAcquireScript.Run(ctx, s.rdb, []string{semaphoreKey(integration)},
		holder, limit, ms(now), ms(now.Add(ttl))).Int()
	return n == 1, err
}

// ReleaseSlot gives a slot back.
func (s *Store) ReleaseSlot(ctx context.Context, integration, holder string) error {
	return s.rdb.ZRem(ctx, semaphoreKey(integration), holder).Err()
}

// RenewSlots extends held slots by ttl, in one pipeline.
func (s *Store) RenewSlots(ctx context.Context, refs []linkflow.SlotRef, ttl time.Duration) error {
	if len(refs) == 0 {
		return nil
	}
	exp := float64(ms(s.now().Add(ttl)))
	pipe := s.rdb.Pipeline()
	for _, r := range refs {
		pipe.ZAddXX(ctx, semaphoreKey(r.Integration), redis.Z{Score: exp, Member: r.Holder})
	}
	_, err := pipe.Exec(ctx)
	return err
}
