package webhooks_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/webhooks"
)

// lookCounter is the real store, counting the poller's looks at the retry
// schedule (each reads all of its shards). hold, when set, runs after a look
// has read the schedule and before it answers: the test decides when the
// look ends.
type lookCounter struct {
	webhooks.DispatchStore
	looks atomic.Int64
	hold  func(look int64)
}

func (c *lookCounter) ClaimDueDeliveries(ctx context.Context, now time.Time, limit int, visibility time.Duration) ([]linkflow.DeliveryRef, time.Time, error) {
	n := c.looks.Add(1)
	refs, next, err := c.DispatchStore.ClaimDueDeliveries(ctx, now, limit, visibility)
	if c.hold != nil {
		c.hold(n)
	}
	return refs, next, err
}

// busyOnce answers each webhook's first attempt 503, the next ones 200.
func busyOnce(w http.ResponseWriter, _ *http.Request, n int) int {
	if n == 1 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
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
	rc := newReceiver(t, busyOnce)
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

// A retry scheduled while the poller is looking (after the look read the
// schedule) is looked at when it is due, not a PollInterval later.
func TestRetryScheduledDuringALook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inLook, release := make(chan struct{}), make(chan struct{})
	counter := &lookCounter{DispatchStore: b.store, hold: func(look int64) {
		if look == 1 {
			close(inLook)
			<-release
		}
	}}
	cfg := b.config()
	cfg.Store = counter
	cfg.Schedule = []time.Duration{0, 300 * time.Millisecond, 300 * time.Millisecond}
	cfg.PollInterval = time.Minute
	rc := newReceiver(t, busyOnce)
	b.dispatcher(cfg)
	// Whatever happens, the held look ends before the dispatcher stops
	// (cleanups run last first).
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free)
	select {
	case <-inLook: // the first look has read an empty schedule
	case <-time.After(10 * time.Second):
		t.Fatal("the poller did not look at start")
	}
	_, eventID := b.finish(rc.url())
	testenv.Eventually(t, 10*time.Second, "the first attempt recorded, its retry scheduled", func() bool {
		d := b.delivery(eventID)
		return d != nil && d.Attempts == 1
	})
	free()
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
	if n := counter.looks.Load(); n != 2 {
		t.Errorf("the poller looked %d times, want 2: the held one and the one when the retry was due", n)
	}
}
