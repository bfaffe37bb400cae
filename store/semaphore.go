package store

import (
	"context"
	"time"
)

var semAcquireScript = script("sem_acquire")

// AcquireSlot takes one of limit fleet-wide slots of an integration for
// holder, held for ttl unless renewed. It reports false when all are taken.
func (s *Store) AcquireSlot(ctx context.Context, integration, holder string, limit int, ttl time.Duration) (bool, error) {
	now := s.now()
	n, err := semAcquireScript.Run(ctx, s.rdb, []string{s.k.semaphore(integration)},
		holder, limit, ms(now), ms(now.Add(ttl))).Int()
	return n == 1, err
}

// ReleaseSlot gives a slot back.
func (s *Store) ReleaseSlot(ctx context.Context, integration, holder string) error {
	return s.rdb.ZRem(ctx, s.k.semaphore(integration), holder).Err()
}
