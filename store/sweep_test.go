package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// A claimed link that no session ended by its deadline fails once the
// deadline is OverdueGrace behind (LINK_EXPIRED, with its link.failed event):
// its message was lost, its commit lost in a failover, or no worker serves
// its integration. One a session still holds is left to it, and failed once
// no session holds it; one that ended is left alone. All three stay listed
// until their retention ends.
func TestSweepFailsClaimedLinksPastTheirDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	unserved := b.create(t, func(in *linkflow.NewLink) { in.ExternalUserID = "u-ann" })
	if _, err := b.st.ClaimLink(ctx, unserved.ID, unserved.ClaimCode, "ann", "pw"); err != nil {
		t.Fatal(err)
	}
	held := b.running(t, "bob", "tok-held")
	b.succeed(t, b.running(t, "cat", "tok-done").ID, "tok-done")
	listed := func(when string) {
		t.Helper()
		if n, err := b.st.IndexedLinks(ctx, b.org); err != nil || n != 3 {
			t.Fatalf("%s: %d links indexed (%v), want all three", when, n, err)
		}
	}

	// The deadline is the link's expiry (an hour); the grace not over yet.
	b.clock.Add(time.Hour + store.OverdueGrace - time.Minute)
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Overdue) != 0 {
		t.Fatalf("sweep within the grace: %+v, %v", sw, err)
	}

	b.clock.Add(2 * time.Minute)
	sw, err := b.st.SweepLinks(ctx, 100)
	if err != nil || len(sw.Overdue) != 1 || sw.Overdue[0].EventType != linkflow.EventLinkFailed ||
		sw.Overdue[0].Event.ID == "" || sw.Overdue[0].LinkID != unserved.ID {
		t.Fatalf("sweep past the grace: %+v, %v", sw, err)
	}
	got, err := b.st.Link(ctx, b.org, unserved.ID)
	if err != nil || got.Status != linkflow.StatusFailed || got.Error == nil || got.Error.Code != linkflow.FailureLinkExpired {
		t.Fatalf("the unserved link: %+v, %v", got, err)
	}
	if got, err := b.st.Link(ctx, b.org, held.ID); err != nil || got.Status != linkflow.StatusRunning {
		t.Fatalf("the held link: %+v, %v", got, err)
	}
	listed("past the grace")

	// The session's lease lapses: the held link fails one grace later.
	if err := b.st.Redis().Del(ctx, b.st.KeyLinkLease(held.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Overdue) != 0 {
		t.Fatalf("sweep right after the lease lapsed: %+v, %v", sw, err)
	}
	b.clock.Add(store.OverdueGrace + time.Second)
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Overdue) != 1 {
		t.Fatalf("sweep a grace after the lease lapsed: %+v, %v", sw, err)
	}
	if got, err := b.st.Link(ctx, b.org, held.ID); err != nil || got.Status != linkflow.StatusFailed {
		t.Fatalf("the formerly held link: %+v, %v", got, err)
	}
	listed("once both failed")
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Overdue) != 0 || sw.Pruned != 0 {
		t.Fatalf("sweep once both failed: %+v, %v", sw, err)
	}

	// Their retention (the default, 30 days) ends: their index entries go.
	b.clock.Add(30 * 24 * time.Hour)
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Overdue) != 0 || sw.Pruned != 3 {
		t.Fatalf("sweep after the retention: %+v, %v", sw, err)
	}
	if n, err := b.st.IndexedLinks(ctx, b.org); err != nil || n != 0 {
		t.Fatalf("%d links indexed after their retention (%v)", n, err)
	}
}

// succeed ends the running link id as its session under token does.
func (b *bundle) succeed(t *testing.T, id, token string) {
	t.Helper()
	l, err := b.st.Link(context.Background(), b.org, id)
	if err != nil {
		t.Fatal(err)
	}
	l.Status, l.CompletedAt, l.Result = linkflow.StatusSucceeded, b.clock.Now(), []byte("{}")
	if _, err := b.st.FinishRun(context.Background(), l, token, nil); err != nil {
		t.Fatal(err)
	}
}

// A link that ends while the sweeper's retention round looks at it stays
// listed: its end moved its retention entry, and neither the round's prune
// (it read the entry as due before the end: "due") nor its move of a held
// link's entry (it found the session's lease before the end: "held") undoes
// that.
func TestSweepLeavesALinkThatEndsMeanwhileListed(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"due", "held"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			l := b.running(t, "ann", "tok")
			b.clock.Add(time.Hour + store.OverdueGrace + time.Second)
			ended := false
			b.st.OnSweepStep(func(s string) {
				if s == step && !ended {
					ended = true
					b.succeed(t, l.ID, "tok")
				}
			})
			if sw, err := b.st.SweepLinks(ctx, 100); err != nil || !ended || len(sw.Overdue) != 0 || sw.Pruned != 0 {
				t.Fatalf("the round the link ended in (ended %v): %+v, %v", ended, sw, err)
			}
			b.clock.Add(store.OverdueGrace + time.Second)
			if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Overdue) != 0 || sw.Pruned != 0 {
				t.Fatalf("the round a grace later: %+v, %v", sw, err)
			}
			if n, err := b.st.IndexedLinks(ctx, b.org); err != nil || n != 1 {
				t.Fatalf("%d links indexed (%v), want the one that ended", n, err)
			}
		})
	}
}

// A link an earlier release claimed is still at its creation's place in the
// retention schedule, the retention past its latest deadline. When that
// comes due, its index entries go, as that release's sweeper had it; it is
// not failed a retention late.
func TestSweepPrunesALinkAnEarlierReleaseClaimed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, nil)
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "ann", "pw"); err != nil {
		t.Fatal(err)
	}
	// Its expiry (an hour), the minimum session time, the retention.
	if err := b.st.SetRetentionDue(ctx, l, b.clock.Now().Add(time.Hour+10*time.Minute+30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(time.Hour + store.OverdueGrace + time.Minute)
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Overdue) != 0 || sw.Pruned != 0 {
		t.Fatalf("sweep past its deadline: %+v, %v", sw, err)
	}
	b.clock.Add(30*24*time.Hour + 5*time.Minute)
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Overdue) != 0 || sw.Pruned != 1 {
		t.Fatalf("sweep past its retention: %+v, %v", sw, err)
	}
	if got, err := b.st.Link(ctx, b.org, l.ID); err != nil || got.Status != linkflow.StatusClaimed {
		t.Fatalf("the link: %+v, %v", got, err)
	}
}

// A link has one entry in its shard's retention schedule all its life: its
// creation (built in Go), its claim and its end (built in Lua) give it the
// same member, and move it.
func TestRetentionEntryIsOneThroughALinksLife(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, func(in *linkflow.NewLink) { in.ExternalUserID = "u-dan" })
	one := func(when string) {
		t.Helper()
		got, want, err := b.st.RetentionEntries(ctx, l)
		if err != nil || len(got) != 1 || got[0] != want {
			t.Fatalf("%s: entries %q (%v), want only %q", when, got, err, want)
		}
	}
	one("created")
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "dan", "pw"); err != nil {
		t.Fatal(err)
	}
	one("claimed")
	if r, err := b.st.BeginRun(ctx, b.org, l.ID, "tok", time.Minute); err != nil || r.Verdict != linkflow.RunStart {
		t.Fatalf("begin: %+v %v", r, err)
	}
	b.succeed(t, l.ID, "tok")
	one("ended")
}

// A sweeper without the key that sealed a pending link's claim code (a key
// roll under way) still expires the link: it does not need the code, and it
// does not drop the link from the expiry schedule unexpired.
func TestSweepExpiresALinkSealedWithAKeyNotGiven(t *testing.T) {
	t.Parallel()
	var cfg store.Config
	b := setupWith(t, func(c *store.Config) { cfg = *c })
	ctx := context.Background()
	l := b.create(t, nil)
	kr, err := store.ParseKeyring(store.GenerateKey("other"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keyring = kr
	other, err := store.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.LinkWithCode(ctx, b.org, l.ID); !errors.Is(err, linkflow.ErrUnknownKey) {
		t.Fatalf("read with its code by a process without the key: %v, want ErrUnknownKey", err)
	}
	if got, err := other.Link(ctx, b.org, l.ID); err != nil || got.ClaimCode != "" {
		t.Fatalf("read without its code by a process without the key: %+v %v", got, err)
	}
	if _, err := other.LinkWithCode(ctx, "org_another", l.ID); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("read as another organization: %v, want not found", err)
	}
	if got, err := other.LinkByCode(ctx, l.ID, l.ClaimCode); err != nil || got.ClaimCode != l.ClaimCode {
		t.Fatalf("read with its code by a process without the key: %+v %v", got, err)
	}
	b.clock.Add(2 * time.Hour)
	sw, err := other.SweepLinks(ctx, 100)
	if err != nil || len(sw.Expired) != 1 || len(sw.Unreadable) != 0 {
		t.Fatalf("sweep: %+v %v, want the link expired", sw, err)
	}
	if got, err := b.st.Link(ctx, b.org, l.ID); err != nil || got.Status != linkflow.StatusExpired {
		t.Fatalf("after the sweep: %+v %v", got, err)
	}
}
