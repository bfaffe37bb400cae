package outbox_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
)

// The feed reads pages in order, from a cursor, an organization's events
// only, and leaves no consumer behind: a receiver polling every second must
// not pile up consumers on the events stream.
func TestFeedPagesLeaveNoConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	if err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 5 {
		for _, org := range []string{"org_a", "org_b"} {
			m := outbox.EventMessage(org, outbox.NewEventID(), "link.succeeded")
			if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Data: m.Data}); err != nil {
				t.Fatal(err)
			}
			if org == "org_a" {
				ids = append(ids, m.ID)
			}
		}
	}
	feed := outbox.NewFeed(js)
	var got []string
	after := uint64(0)
	for range 20 {
		page, more, err := feed.Read(ctx, "org_a", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			got = append(got, e.EventID)
			after = e.Seq
		}
		if !more {
			break
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("read %v, want %v", got, ids)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("read %v, want %v", got, ids)
		}
	}
	for range 20 {
		if _, _, err := feed.Read(ctx, "org_a", 0, 10); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, outbox.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left on the events stream after the reads", info.State.Consumers)
	}
}
