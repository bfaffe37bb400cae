package webhooks_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/webhooks"
)

// lookCounter is the real store, counting the poller's looks at the retry
// schedule (each a round trip over all of its shards).
type lookCounter struct {
	webhooks.DispatchStore
	looks atomic.Int64
}

func (c *lookCounter) ClaimDueDeliveries(ctx context.Context, now time.Time, limit int, visibility time.Duration) ([]linkflow.DeliveryRef, time.Time, error) {
	c.looks.Add(1)
	return c.DispatchStore.ClaimDueDeliveries(ctx, now, limit, visibility)
}

// A retry this process schedules has the poller look when it is due, not at
// once as well: a look before anything is due finds nothing and costs a
// round trip over every shard of the schedule.
func TestPollerLooksWhenARetryIsDue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	counter := &lookCounter{DispatchStore: b.store}
	cfg := b.config()
	cfg.Store = counter
	cfg.Schedule = []time.Duration{0, 300 * time.Millisecond, 300 * time.Millisecond}
	cfg.PollInterval = time.Minute // only the retries make it look
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) int {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	b.dispatcher(cfg)
	const events = 5
	for range events {
		// One at a time, so that no look can serve two retries.
		_, eventID := b.finish(rc.url())
		d := b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
		if d.Attempts != 2 {
			t.Fatalf("event %s: %d attempts, want 2", eventID, d.Attempts)
		}
	}
	// One look at start, one per retry; a look at once on each retry
	// scheduled would make it 11.
	if n := counter.looks.Load(); n > events+1 {
		t.Errorf("the poller looked at the schedule %d times for %d retries; want at most %d", n, events, events+1)
	}
}
