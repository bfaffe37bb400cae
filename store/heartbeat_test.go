package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
)

// A fleet slot another process dropped as expired (its renewal came late: a
// Redis stall, clocks apart) while its session runs on is held again at the
// next heartbeat that renews the session's lease, so the fleet counts it; a
// slot whose session ended (no lease) is not.
func TestHeartbeatHoldsALostSlotAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	integ := "limit-" + b.org
	running := b.running(t, "ann", "tok-run")
	ended := b.running(t, "bob", "tok-end")
	for _, h := range []string{"h-run", "h-end"} {
		if ok, err := b.st.AcquireSlot(ctx, integ, h, 2, time.Minute); err != nil || !ok {
			t.Fatalf("acquire %s: %v %v", h, ok, err)
		}
	}
	b.succeed(t, ended.ID, "tok-end")
	// Both holds lapse on the store's clock; another process takes a slot,
	// dropping them as expired.
	b.clock.Add(2 * time.Minute)
	if ok, err := b.st.AcquireSlot(ctx, integ, "h-other", 2, time.Minute); err != nil || !ok {
		t.Fatalf("acquire h-other: %v %v", ok, err)
	}
	states, err := b.st.Heartbeat(ctx,
		[]linkflow.LeaseRef{{OrgID: b.org, LinkID: running.ID, Token: "tok-run"}, {OrgID: b.org, LinkID: ended.ID, Token: "tok-end"}},
		[]linkflow.SlotRef{{Integration: integ, Holder: "h-run", LinkID: running.ID}, {Integration: integ, Holder: "h-end", LinkID: ended.ID}},
		time.Minute)
	if err != nil || len(states) != 2 || states[0].Lost || !states[1].Lost {
		t.Fatalf("heartbeat: %+v %v", states, err)
	}
	holders, err := b.st.SlotHolders(ctx, integ)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(holders)
	if !slices.Equal(holders, []string{"h-other", "h-run"}) {
		t.Fatalf("holders %v, want h-other and the running session's h-run", holders)
	}
}
