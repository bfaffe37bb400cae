package store_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"

	"github.com/redis/go-redis/v9"
)

// finished ends a new link whose webhook goes to url and returns its event.
func (b *bundle) finished(t *testing.T, url string) *linkflow.Finished {
	t.Helper()
	l := b.create(t, func(in *linkflow.NewLink) { in.WebhookURL = url })
	res, err := b.st.CancelLink(context.Background(), b.org, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	return res.Finished
}

func (b *bundle) accept(t *testing.T, fin *linkflow.Finished, firstIn, claimFor time.Duration) *linkflow.Accepted {
	t.Helper()
	now := b.clock.Now()
	acc, err := b.st.AcceptEvent(context.Background(), linkflow.EventAccept{OrgID: b.org, EventID: fin.EventID,
		Now: now, FirstAt: now.Add(firstIn), ClaimUntil: now.Add(claimFor)})
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// due is when a delivery is due in the retry schedule; zero when it is not
// there.
func (b *bundle) due(t *testing.T, eventID string) time.Time {
	t.Helper()
	s, err := b.st.Redis().ZScore(context.Background(), b.st.KeyRetrySchedule(eventID), store.MemberOf(linkflow.DeliveryRef{OrgID: b.org, EventID: eventID})).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}
	}
	if err != nil {
		t.Fatal(err)
	}
	return time.UnixMilli(int64(s))
}

func (b *bundle) record(t *testing.T, fin *linkflow.Finished, version int64, status string, next, claim time.Time) error {
	t.Helper()
	now := b.clock.Now()
	_, err := b.st.RecordAttempt(context.Background(), linkflow.AttemptRecord{OrgID: b.org, EventID: fin.EventID,
		Version: version, At: now, Entry: []byte(linkflow.AttemptEntryPrefix + `"x":1}`), StatusCode: 500,
		Status: status, Step: 1, NextAt: next, Trigger: linkflow.TriggerRetry, FailedRetention: time.Hour,
		Claim: claim, Now: now})
	return err
}

// The attempts of an event recorded without a link (a connection's) are
// logged with its delivery, for as long as it is kept, and read by its
// organization only.
func TestEventAttemptsLogged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	fin := b.finished(t, "https://hooks.example.com/a")
	acc := b.accept(t, fin, 0, time.Minute)
	if err := b.record(t, fin, acc.Delivery.Version, linkflow.DeliveryPending, b.clock.Now().Add(time.Minute), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := b.record(t, fin, acc.Delivery.Version, linkflow.DeliveryPending, b.clock.Now().Add(time.Minute), time.Time{}); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("a stale attempt: %v", err)
	}
	got, err := b.st.EventAttempts(ctx, b.org, fin.EventID)
	if err != nil || len(got) != 2 || !strings.HasPrefix(string(got[0]), `{"attempt":1,"x":1`) ||
		!strings.HasPrefix(string(got[1]), `{"attempt":2,"superseded":true,`) {
		t.Fatalf("attempts: %s %v", got, err)
	}
	if ttl := b.st.Redis().PTTL(ctx, b.st.KeyDeliveryLog(fin.EventID)).Val(); ttl <= 0 {
		t.Fatalf("the log is kept for ever: %s", ttl)
	}
	if _, err := b.st.EventAttempts(ctx, "org_other", fin.EventID); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("another organization read the log: %v", err)
	}
}

// Accepting an event creates its delivery and claims its first attempt; a
// redelivered message changes nothing and owns nothing.
func TestAcceptEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	fin := b.finished(t, "https://hooks.example.com/a")
	now := b.clock.Now()
	acc := b.accept(t, fin, 0, time.Minute)
	if !acc.Created || !acc.Owned || acc.Delivery.Status != linkflow.DeliveryPending || acc.Event == nil ||
		acc.Event.ID != fin.EventID || acc.Event.WebhookURL != "https://hooks.example.com/a" || len(acc.Event.Body) == 0 ||
		!acc.Delivery.NextAt.Equal(now) {
		t.Fatalf("accepted: %+v, delivery %+v", acc, acc.Delivery)
	}
	if due := b.due(t, fin.EventID); !due.Equal(now.Add(time.Minute)) {
		t.Fatalf("claimed until %s, want %s", due, now.Add(time.Minute))
	}

	b.clock.Add(time.Second)
	again := b.accept(t, fin, 0, time.Minute)
	if again.Created || again.Owned || again.Delivery.Version != acc.Delivery.Version {
		t.Fatalf("redelivered message: %+v", again)
	}
	if due := b.due(t, fin.EventID); !due.Equal(now.Add(time.Minute)) {
		t.Fatalf("the redelivered message moved the claim to %s", due)
	}

	// No such event (another organization's, an unknown id): nothing is
	// created or scheduled.
	other := b.finished(t, "https://hooks.example.com/b")
	for _, a := range []linkflow.EventAccept{
		{OrgID: "org_other", EventID: other.EventID},
		{OrgID: b.org, EventID: "evt_nonsense"},
	} {
		a.Now, a.FirstAt, a.ClaimUntil = now, now, now.Add(time.Minute)
		if _, err := b.st.AcceptEvent(ctx, a); !errors.Is(err, linkflow.ErrNotFound) {
			t.Errorf("accept %+v: %v, want not found", a, err)
		}
	}
	if _, _, err := b.st.LoadDelivery(ctx, b.org, other.EventID); !errors.Is(err, linkflow.ErrNotFound) || !b.due(t, other.EventID).IsZero() {
		t.Errorf("a missing event left state (%v) or a schedule entry", err)
	}

	// No webhook URL: finished at once, never scheduled.
	none := b.finished(t, "")
	if acc := b.accept(t, none, 0, time.Minute); acc.Owned || acc.Delivery.Status != linkflow.DeliveryNoTarget ||
		acc.Event != nil || !b.due(t, none.EventID).IsZero() {
		t.Errorf("no target: %+v", acc)
	}

	// A first attempt due later is scheduled then, owned by nobody.
	later := b.finished(t, "https://hooks.example.com/c")
	first := b.clock.Now().Add(5 * time.Second)
	if acc := b.accept(t, later, 5*time.Second, time.Minute); acc.Owned || !acc.Created ||
		!b.due(t, later.EventID).Equal(first) {
		t.Errorf("first attempt later: %+v, due %s", acc, b.due(t, later.EventID))
	}
}

// A redelivered message for a pending delivery whose schedule entry went
// missing (a crash between two steps) puts it back at its own time; one for
// a finished delivery leaves no entry.
func TestAcceptEventRepairsTheSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	fin := b.finished(t, "https://hooks.example.com/a")
	acc := b.accept(t, fin, 0, time.Minute)
	next := b.clock.Now().Add(time.Hour)
	if err := b.record(t, fin, acc.Delivery.Version, linkflow.DeliveryPending, next, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := b.st.Redis().ZRem(ctx, b.st.KeyRetrySchedule(fin.EventID), store.MemberOf(linkflow.DeliveryRef{OrgID: b.org, EventID: fin.EventID})).Err(); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(time.Second)
	if again := b.accept(t, fin, 0, time.Minute); again.Owned || again.Created {
		t.Errorf("redelivered: %+v", again)
	}
	if due := b.due(t, fin.EventID); !due.Equal(next) {
		t.Errorf("due %s, want %s", due, next)
	}

	done := b.finished(t, "https://hooks.example.com/b")
	acc = b.accept(t, done, 0, time.Minute)
	if err := b.record(t, done, acc.Delivery.Version, linkflow.DeliverySucceeded, time.Time{}, acc.Delivery.NextAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !b.due(t, done.EventID).IsZero() {
		t.Fatal("a succeeded delivery is still scheduled")
	}
	if again := b.accept(t, done, 0, time.Minute); again.Owned || again.Delivery.Status != linkflow.DeliverySucceeded {
		t.Errorf("redelivered after success: %+v", again)
	}
	if !b.due(t, done.EventID).IsZero() {
		t.Error("a redelivered message scheduled a finished delivery")
	}
}

// Recording an attempt settles its schedule entry in the same step, never
// undoing a redelivery that raced it.
func TestRecordAttemptSettlesTheSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type bench struct {
		b     *bundle
		fin   *linkflow.Finished
		del   *linkflow.Delivery
		claim time.Time
	}
	start := func(t *testing.T) bench {
		b := setup(t)
		fin := b.finished(t, "https://hooks.example.com/a")
		acc := b.accept(t, fin, 0, time.Minute)
		if !acc.Owned {
			t.Fatal("not owned")
		}
		b.clock.Add(100 * time.Millisecond) // the attempt
		return bench{b: b, fin: fin, del: acc.Delivery, claim: acc.Delivery.NextAt.Add(time.Minute)}
	}
	resend := func(t *testing.T, x bench, trigger string, onlyFailed bool) {
		t.Helper()
		if _, err := x.b.st.ResendDelivery(ctx, x.b.org, x.fin.EventID, trigger, onlyFailed, x.b.clock.Now(), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	dueNow := func(t *testing.T, x bench) {
		t.Helper()
		due := x.b.due(t, x.fin.EventID)
		if due.IsZero() || due.After(x.b.clock.Now()) {
			t.Errorf("due %s, want by %s", due, x.b.clock.Now())
		}
	}

	t.Run("retry", func(t *testing.T) {
		t.Parallel()
		x := start(t)
		next := x.b.clock.Now().Add(time.Hour)
		if err := x.b.record(t, x.fin, x.del.Version, linkflow.DeliveryPending, next, x.claim); err != nil {
			t.Fatal(err)
		}
		if due := x.b.due(t, x.fin.EventID); !due.Equal(next) {
			t.Errorf("due %s, want %s", due, next)
		}
	})
	t.Run("final", func(t *testing.T) {
		t.Parallel()
		x := start(t)
		if err := x.b.record(t, x.fin, x.del.Version, linkflow.DeliveryFailed, time.Time{}, x.claim); err != nil {
			t.Fatal(err)
		}
		if !x.b.due(t, x.fin.EventID).IsZero() {
			t.Error("a failed delivery is still scheduled")
		}
	})
	t.Run("redelivery during the attempt", func(t *testing.T) {
		t.Parallel()
		x := start(t)
		resend(t, x, linkflow.TriggerManual, false)
		err := x.b.record(t, x.fin, x.del.Version, linkflow.DeliveryPending, x.b.clock.Now().Add(time.Hour), x.claim)
		if !errors.Is(err, linkflow.ErrFenced) {
			t.Fatalf("record: %v, want fenced", err)
		}
		dueNow(t, x)
	})
	t.Run("redelivery after the attempt is recorded", func(t *testing.T) {
		t.Parallel()
		x := start(t)
		if err := x.b.record(t, x.fin, x.del.Version, linkflow.DeliveryPending, x.b.clock.Now().Add(time.Hour), x.claim); err != nil {
			t.Fatal(err)
		}
		resend(t, x, linkflow.TriggerManual, false)
		dueNow(t, x)
	})
	t.Run("replay after the delivery failed", func(t *testing.T) {
		t.Parallel()
		x := start(t)
		if err := x.b.record(t, x.fin, x.del.Version, linkflow.DeliveryFailed, time.Time{}, x.claim); err != nil {
			t.Fatal(err)
		}
		resend(t, x, linkflow.TriggerReplay, true)
		dueNow(t, x)
	})
	for _, decision := range []string{linkflow.DeliveryFailed, linkflow.DeliveryPending} {
		t.Run("redelivery whose schedule write is late or lost, decision "+decision, func(t *testing.T) {
			t.Parallel()
			// The state changed, the schedule not (yet): the entry is still
			// at the claim. The dropped decision must neither take it out nor
			// put it at its own time: the redelivery is due now.
			x := start(t)
			resend(t, x, linkflow.TriggerManual, false)
			if err := x.b.st.Redis().ZAdd(ctx, x.b.st.KeyRetrySchedule(x.fin.EventID), redis.Z{Score: float64(x.claim.UnixMilli()),
				Member: store.MemberOf(linkflow.DeliveryRef{OrgID: x.b.org, EventID: x.fin.EventID})}).Err(); err != nil {
				t.Fatal(err)
			}
			var next time.Time
			if decision == linkflow.DeliveryPending {
				next = x.b.clock.Now().Add(time.Hour)
			}
			err := x.b.record(t, x.fin, x.del.Version, decision, next, x.claim)
			if !errors.Is(err, linkflow.ErrFenced) {
				t.Fatalf("record: %v, want fenced", err)
			}
			dueNow(t, x)
		})
	}
	t.Run("expired claim", func(t *testing.T) {
		t.Parallel()
		// Past its claim the entry may be someone else's: it is left for the
		// next claimer to correct.
		x := start(t)
		x.b.clock.Add(2 * time.Minute)
		if err := x.b.record(t, x.fin, x.del.Version, linkflow.DeliveryFailed, time.Time{}, x.claim); err != nil {
			t.Fatal(err)
		}
		if due := x.b.due(t, x.fin.EventID); !due.Equal(x.claim) {
			t.Errorf("due %s, want the expired claim %s left alone", due, x.claim)
		}
	})
}

// A resend puts the delivery in the retry schedule in the step that makes
// it pending: no later command can fail (a lost connection, a canceled
// request) and leave a pending delivery that no dispatcher finds and no
// replay takes, as it is no longer failed.
func TestResendSchedulesInOneStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	refuse := &testenv.Refuse{Commands: []string{"zadd"}}
	b := setupWith(t, func(c *store.Config) { c.Redis.AddHook(refuse); c.NoAutoPipeline = true })
	fin := b.finished(t, "https://hooks.example.com/a")
	acc := b.accept(t, fin, 0, time.Minute)
	if err := b.record(t, fin, acc.Delivery.Version, linkflow.DeliveryFailed, time.Time{}, acc.Delivery.NextAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	refuse.On.Store(true)
	d, err := b.st.ResendDelivery(ctx, b.org, fin.EventID, linkflow.TriggerReplay, true, b.clock.Now(), time.Hour)
	refuse.On.Store(false)
	if err != nil {
		t.Fatalf("replay with every separate ZADD refused: %v", err)
	}
	if d.Status != linkflow.DeliveryPending {
		t.Fatalf("replayed: %+v", d)
	}
	if due := b.due(t, fin.EventID); due.IsZero() || due.After(b.clock.Now()) {
		t.Fatalf("a replayed delivery is due %s, want by %s", due, b.clock.Now())
	}
}

// Only the holder of a claim settles it.
func TestSettleDeliveryRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	fin := b.finished(t, "https://hooks.example.com/a")
	acc := b.accept(t, fin, 0, time.Minute)
	ref := linkflow.DeliveryRef{OrgID: b.org, EventID: fin.EventID}
	now, claim := b.clock.Now(), acc.Delivery.NextAt.Add(time.Minute)
	for _, tt := range []struct {
		name       string
		claim, now time.Time
	}{
		{"another claim", claim.Add(time.Millisecond), now},
		{"expired", claim, claim},
	} {
		if ok, err := b.st.SettleDeliveryRetry(ctx, ref, tt.claim, tt.now, time.Time{}); ok || err != nil {
			t.Errorf("%s: settled %v, %v", tt.name, ok, err)
		}
	}
	next := now.Add(time.Hour)
	if ok, err := b.st.SettleDeliveryRetry(ctx, ref, claim, now, next); !ok || err != nil {
		t.Fatalf("holder: settled %v, %v", ok, err)
	}
	if due := b.due(t, fin.EventID); !due.Equal(next) {
		t.Errorf("due %s, want %s", due, next)
	}
	// Moved, the claim is gone with it.
	if ok, err := b.st.SettleDeliveryRetry(ctx, ref, claim, now, time.Time{}); err != nil || ok {
		t.Errorf("settled twice: %v (%v)", ok, err)
	}
}

// LoadDelivery reads a pending delivery with its event in one step.
func TestLoadDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	fin := b.finished(t, "https://hooks.example.com/a")
	b.accept(t, fin, 0, time.Minute)
	del, ev, err := b.st.LoadDelivery(ctx, b.org, fin.EventID)
	if err != nil || del.Status != linkflow.DeliveryPending || ev == nil || ev.ID != fin.EventID || len(ev.Body) == 0 {
		t.Fatalf("load: %+v %+v %v", del, ev, err)
	}
	if err := b.st.Redis().Del(ctx, b.st.KeyEvent(fin.EventID)).Err(); err != nil {
		t.Fatal(err)
	}
	if del, ev, err := b.st.LoadDelivery(ctx, b.org, fin.EventID); err != nil || del == nil || ev != nil {
		t.Errorf("event gone from the log: %+v %+v %v", del, ev, err)
	}
	if _, _, err := b.st.LoadDelivery(ctx, b.org, "evt_none"); !errors.Is(err, linkflow.ErrNotFound) {
		t.Errorf("no state: %v", err)
	}
}

// Every field a recorded attempt writes: the attempt itself always, the
// decision only from the current version, which it then moves on, so a
// second decision from the same version is fenced.
func TestRecordAttemptWritesTheState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	fin := b.finished(t, "https://hooks.example.com/a")
	acc := b.accept(t, fin, 0, time.Minute)
	if d := acc.Delivery; d.Version != 1 || d.Attempts != 0 || d.Status != linkflow.DeliveryPending || d.LinkID == "" {
		t.Fatalf("accepted: %+v", d)
	}
	ms := func(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()) }
	rec := func(version int64, code int, errText string, delivered bool, status string, next time.Time) error {
		t.Helper()
		b.clock.Add(time.Second)
		_, err := b.st.RecordAttempt(ctx, linkflow.AttemptRecord{OrgID: b.org, EventID: fin.EventID,
			LinkID: acc.Delivery.LinkID, Version: version, At: b.clock.Now(),
			Entry: []byte(linkflow.AttemptEntryPrefix + `"x":1}`), StatusCode: code, Error: errText,
			Delivered: delivered, Status: status, Step: 1, NextAt: next, Trigger: linkflow.TriggerRetry,
			FailedRetention: time.Hour})
		return err
	}
	load := func() *linkflow.Delivery {
		t.Helper()
		d, _, err := b.st.LoadDelivery(ctx, b.org, fin.EventID)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	// The state accept answers with is the state it wrote.
	if d := load(); !reflect.DeepEqual(d, acc.Delivery) {
		t.Fatalf("accept answered %+v, wrote %+v", acc.Delivery, d)
	}

	next := b.clock.Now().Add(time.Hour)
	if err := rec(1, 500, "status 500", false, linkflow.DeliveryPending, next); err != nil {
		t.Fatal(err)
	}
	d := load()
	if d.Attempts != 1 || d.Version != 2 || d.Status != linkflow.DeliveryPending || d.Step != 1 ||
		!d.NextAt.Equal(ms(next)) || d.Trigger != linkflow.TriggerRetry || !d.LastAttemptAt.Equal(ms(b.clock.Now())) ||
		d.LastStatusCode != 500 || d.LastError != "status 500" || !d.DeliveredAt.IsZero() || !d.FailedAt.IsZero() {
		t.Fatalf("after a retry decision: %+v", d)
	}

	// The same version again: the attempt counts and is logged as
	// superseded, the decision is dropped.
	if err := rec(1, 0, "timeout", false, linkflow.DeliveryFailed, time.Time{}); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("a second decision from version 1: %v, want fenced", err)
	}
	d = load()
	if d.Attempts != 2 || d.Version != 2 || d.Status != linkflow.DeliveryPending || d.LastError != "timeout" || !d.FailedAt.IsZero() {
		t.Fatalf("after a fenced attempt: %+v", d)
	}
	log, err := b.st.DeliveryAttempts(ctx, b.org, acc.Delivery.LinkID)
	if err != nil || len(log) != 2 || string(log[0]) != `{"attempt":1,"x":1}` || string(log[1]) != `{"attempt":2,"superseded":true,"x":1}` {
		t.Fatalf("attempt log %q (%v)", log, err)
	}

	if err := rec(2, 204, "", true, linkflow.DeliverySucceeded, time.Time{}); err != nil {
		t.Fatal(err)
	}
	d = load()
	if d.Attempts != 3 || d.Version != 3 || d.Status != linkflow.DeliverySucceeded || !d.DeliveredAt.Equal(ms(b.clock.Now())) ||
		d.LastStatusCode != 204 || d.LastError != "" || !d.FailedAt.IsZero() {
		t.Fatalf("after delivering: %+v", d)
	}

	// A failure for good is listed as failed.
	fin2 := b.finished(t, "https://hooks.example.com/b")
	acc2 := b.accept(t, fin2, 0, time.Minute)
	b.clock.Add(time.Second)
	if _, err := b.st.RecordAttempt(ctx, linkflow.AttemptRecord{OrgID: b.org, EventID: fin2.EventID,
		LinkID: acc2.Delivery.LinkID, Version: 1, At: b.clock.Now(), Entry: []byte(linkflow.AttemptEntryPrefix + `"x":1}`),
		StatusCode: 500, Error: "status 500", Status: linkflow.DeliveryFailed, Step: 1, Trigger: linkflow.TriggerRetry,
		FailedRetention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	d2, _, err := b.st.LoadDelivery(ctx, b.org, fin2.EventID)
	if err != nil || d2.Status != linkflow.DeliveryFailed || d2.Version != 2 || !d2.FailedAt.Equal(ms(b.clock.Now())) {
		t.Fatalf("after failing for good: %+v (%v)", d2, err)
	}
	failed, cursor, err := b.st.FailedDeliveries(ctx, b.org, "", 10, b.clock.Now().Add(-time.Hour), time.Time{})
	if err != nil || len(failed) != 1 || failed[0].EventID != fin2.EventID || cursor != "" {
		t.Fatalf("failed deliveries: %+v %q (%v)", failed, cursor, err)
	}
	// A page exactly full with nothing after it is the last: no cursor to
	// an empty page.
	if failed, cursor, err = b.st.FailedDeliveries(ctx, b.org, "", 1, b.clock.Now().Add(-time.Hour), time.Time{}); err != nil || len(failed) != 1 || cursor != "" {
		t.Fatalf("a full last page: %+v, cursor %q (%v), want none", failed, cursor, err)
	}
	// Bounded above: failed at until is listed, failed after it is not.
	if failed, _, err = b.st.FailedDeliveries(ctx, b.org, "", 10, b.clock.Now().Add(-time.Hour), b.clock.Now()); err != nil || len(failed) != 1 {
		t.Fatalf("failed up to its failure: %+v (%v), want it", failed, err)
	}
	if failed, cursor, err = b.st.FailedDeliveries(ctx, b.org, "", 10, b.clock.Now().Add(-time.Hour), b.clock.Now().Add(-time.Millisecond)); err != nil || len(failed) != 0 || cursor != "" {
		t.Fatalf("failed up to before its failure: %+v, cursor %q (%v), want none", failed, cursor, err)
	}
}

// The attempt log keeps the last LogCap attempts; recording an attempt of a
// delivery with no state writes nothing and says so.
func TestRecordAttemptKeepsTheLastAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	fin := b.finished(t, "https://hooks.example.com/a")
	acc := b.accept(t, fin, 0, time.Minute)
	for range 5 {
		b.clock.Add(time.Second)
		_, err := b.st.RecordAttempt(ctx, linkflow.AttemptRecord{OrgID: b.org, EventID: fin.EventID,
			LinkID: acc.Delivery.LinkID, Version: 0, At: b.clock.Now(), LogCap: 3,
			Entry: []byte(linkflow.AttemptEntryPrefix + `"x":1}`), StatusCode: 500, Status: linkflow.DeliveryPending,
			Step: 1, NextAt: b.clock.Now().Add(time.Hour), Trigger: linkflow.TriggerRetry, FailedRetention: time.Hour})
		if !errors.Is(err, linkflow.ErrFenced) {
			t.Fatalf("record from version 0: %v, want fenced", err)
		}
	}
	log, err := b.st.DeliveryAttempts(ctx, b.org, acc.Delivery.LinkID)
	want := []string{`{"attempt":3,"superseded":true,"x":1}`, `{"attempt":4,"superseded":true,"x":1}`, `{"attempt":5,"superseded":true,"x":1}`}
	if err != nil || len(log) != len(want) {
		t.Fatalf("attempt log %q (%v), want %q", log, err, want)
	}
	for i := range want {
		if string(log[i]) != want[i] {
			t.Errorf("attempt log[%d] = %s, want %s", i, log[i], want[i])
		}
	}

	if err := b.st.Redis().Del(ctx, b.st.KeyDelivery(fin.EventID)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.RecordAttempt(ctx, linkflow.AttemptRecord{OrgID: b.org, EventID: fin.EventID,
		LinkID: acc.Delivery.LinkID, Version: 1, At: b.clock.Now(), Entry: []byte(linkflow.AttemptEntryPrefix + `"x":1}`),
		Status: linkflow.DeliverySucceeded, FailedRetention: time.Hour}); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("record without state: %v, want not found", err)
	}
	if log, _ := b.st.DeliveryAttempts(ctx, b.org, acc.Delivery.LinkID); len(log) != len(want) {
		t.Errorf("recording without state logged it: %q", log)
	}
	if n, err := b.st.Redis().Exists(ctx, b.st.KeyDelivery(fin.EventID)).Result(); err != nil || n != 0 {
		t.Errorf("recording without state created one: %d (%v)", n, err)
	}
}
