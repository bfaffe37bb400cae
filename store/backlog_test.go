package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
)

// Backlog sums every shard's outbox, retry schedule, expiry and retention
// schedules; asked for a sample, it reads the states of the retry
// schedule's entries.
func TestBacklog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	backlog := func() *linkflow.Backlog {
		t.Helper()
		got, err := b.st.Backlog(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := backlog(); !reflect.DeepEqual(*got, linkflow.Backlog{}) {
		t.Fatalf("empty store: %+v", got)
	}

	for range 3 {
		b.create(t, nil)
	}
	recorded := b.clock.Now()
	fin := b.finished(t, "https://hooks.example.com/a") // a link canceled: its event waits in the outbox
	b.clock.Add(30 * time.Second)
	got := backlog()
	if got.PendingLinks != 3 || got.KeptLinks != 4 || got.OutboxEntries != 1 || !got.OutboxOldest.Equal(recorded.Truncate(time.Millisecond)) {
		t.Fatalf("backlog %+v, want 3 pending, 4 kept, 1 outbox entry recorded at %s", got, recorded)
	}
	if got.RetryScheduled != 0 || !got.RetryNextDue.IsZero() {
		t.Fatalf("retries %+v, want none", got)
	}

	// A dispatcher accepts the event and its first attempt fails: a retry
	// in an hour.
	acc := b.accept(t, fin, 0, time.Minute)
	b.clock.Add(100 * time.Millisecond)
	next := b.clock.Now().Add(time.Hour)
	if err := b.record(t, fin, acc.Delivery.Version, linkflow.DeliveryPending, next, acc.Delivery.NextAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got = backlog()
	if got.RetryScheduled != 1 || !got.RetryNextDue.Equal(next.Truncate(time.Millisecond)) {
		t.Fatalf("retries %+v, want 1 due at %s", got, next)
	}
	if len(got.Retrying) != 0 {
		t.Fatalf("no sample asked, got %v", got.Retrying)
	}
	sampled, err := b.st.Backlog(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	ds := sampled.Retrying
	if len(ds) != 1 || ds[0].EventID != fin.EventID || ds[0].OrgID != b.org || ds[0].URL != "https://hooks.example.com/a" ||
		ds[0].Attempts != 1 || ds[0].LastStatusCode != 500 || ds[0].Status != linkflow.DeliveryPending ||
		!ds[0].NextAt.Equal(next.Truncate(time.Millisecond)) {
		t.Fatalf("retrying deliveries %+v", ds)
	}
}
