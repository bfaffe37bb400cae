package linkflow

import "time"

// Backlog is the work waiting in Redis, summed over every shard: what an
// operator watches besides JetStream's consumers (store.Backlog reads it).
type Backlog struct {
	// OutboxEntries are messages recorded with a state change and not yet
	// confirmed by JetStream. OutboxOldest is the score of the oldest: when
	// it was recorded, or last handed to the relay for republishing (the
	// relay pushes an entry back each time it takes it), zero when none.
	OutboxEntries int64
	OutboxOldest  time.Time
	// RetryScheduled are webhook deliveries waiting in the retry schedule
	// (a first attempt being made, or a retry); RetryNextDue is when the
	// earliest is due, zero when none.
	RetryScheduled int64
	RetryNextDue   time.Time
	// PendingLinks are links created and not claimed yet, nor expired by
	// the sweeper (the expiry schedule).
	PendingLinks int64
	// KeptLinks are the links Redis keeps, whatever their status: every
	// link is in the retention schedule from its creation until its
	// retention ends.
	KeptLinks int64
	// Retrying is a sample of the retry schedule when one was asked for:
	// the delivery states of its soonest entries in each shard, each with
	// NextAt set to when the schedule has it due. An operator sees from it
	// which receivers fail.
	Retrying []*Delivery
}
