package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
)

// Redeliver sends a delivered event again, now, with the same webhook-id.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dispatcher(b.config())
	rc := newReceiver(t, answer(http.StatusOK))
	linkID, eventID := b.finish(rc.url())
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)

	v, err := b.svc.Redeliver(b.ctx, b.org, linkID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != linkflow.DeliveryPending || v.WebhookID != eventID {
		t.Errorf("redeliver answered %+v", v)
	}
	testenv.Eventually(t, 10*time.Second, "the redelivery", func() bool { return rc.count(eventID) == 2 })
	d := b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
	reqs := rc.requests()
	if reqs[0].id != reqs[1].id || !bytes.Equal(reqs[0].body, reqs[1].body) {
		t.Errorf("redelivery differs: %s vs %s", reqs[0].id, reqs[1].id)
	}
	att := b.attempts(linkID)
	if len(att) != 2 || att[1].Trigger != "manual" || att[1].Outcome != "succeeded" || d.Attempts != 2 {
		t.Errorf("attempt log = %s", mustJSON(t, att))
	}
	// The delivery latency measures the first delivery, not one asked for
	// later (it would count from the event's acceptance).
	if n := histogramCount(t, b, "linkflow_webhook_delivery_latency_seconds"); n != 1 {
		t.Errorf("delivery latency observed %d times, want the first delivery's only", n)
	}

	// Another organization's link is not found; an open link has nothing to
	// redeliver.
	other, err := b.store.CreateOrg(b.ctx, "", "Other", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Redeliver(b.ctx, other.ID, linkID); !errors.Is(err, linkflow.ErrNotFound) {
		t.Errorf("another organization's redeliver: %v", err)
	}
	if _, err := b.svc.Deliveries(b.ctx, other.ID, linkID); !errors.Is(err, linkflow.ErrNotFound) {
		t.Errorf("another organization's deliveries: %v", err)
	}
	open, err := b.store.CreateLink(b.ctx, linkflow.NewLink{OrgID: b.org, IntegrationID: "sandbox", WebhookURL: rc.url(), ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Redeliver(b.ctx, b.org, open.Link.ID); !errors.As(err, new(*linkflow.StateError)) {
		t.Errorf("redeliver of an open link: %v", err)
	}
	if ld, err := b.svc.Deliveries(b.ctx, b.org, open.Link.ID); err != nil || ld.Delivery != nil || len(ld.Data) != 0 {
		t.Errorf("deliveries of an open link: %+v, %v", ld, err)
	}
}

// A redelivery of a delivered event that the receiver refuses is a failed
// attempt in the log, and leaves the delivery succeeded, counted once.
func TestRedeliveryThatFailsKeepsTheSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dispatcher(b.config())
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) int {
		if n == 1 {
			return http.StatusOK
		}
		w.WriteHeader(http.StatusInternalServerError)
		return http.StatusInternalServerError
	})
	linkID, eventID := b.finish(rc.url())
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
	if _, err := b.svc.Redeliver(b.ctx, b.org, linkID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the redelivery recorded", func() bool {
		d := b.delivery(eventID)
		return d != nil && d.Attempts == 2 && d.Status == linkflow.DeliverySucceeded
	})
	if att := b.attempts(linkID); len(att) != 2 || att[1].Trigger != "manual" || att[1].Outcome != "failed" || att[1].StatusCode == nil || *att[1].StatusCode != 500 {
		t.Errorf("attempt log = %s", mustJSON(t, att))
	}
	testenv.Eventually(t, 10*time.Second, "the first delivery counted", func() bool {
		return counterValue(t, b, "linkflow_webhook_deliveries_finished_total", "succeeded") >= 1
	})
	if s, f := counterValue(t, b, "linkflow_webhook_deliveries_finished_total", "succeeded"),
		counterValue(t, b, "linkflow_webhook_deliveries_finished_total", "failed"); s != 1 || f != 0 {
		t.Errorf("deliveries finished: %v succeeded, %v failed; want 1 and 0", s, f)
	}
}

// A redelivery of a delivery still in its schedule happens now and does not
// use up a retry.
func TestRedeliverWhileRetrying(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Schedule = []time.Duration{0, time.Hour, time.Hour}
	b.dispatcher(cfg)
	rc := newReceiver(t, answer(http.StatusInternalServerError))
	linkID, eventID := b.finish(rc.url())
	testenv.Eventually(t, 10*time.Second, "first attempt", func() bool {
		d := b.delivery(eventID)
		return d != nil && d.Attempts == 1
	})
	if _, err := b.svc.Redeliver(b.ctx, b.org, linkID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the manual attempt recorded", func() bool {
		d := b.delivery(eventID)
		return d.Attempts == 2 && d.Trigger == linkflow.TriggerRetry
	})
	d := b.delivery(eventID)
	if d.Status != linkflow.DeliveryPending || d.Step != 1 || d.NextAt.Before(time.Now().Add(30*time.Minute)) {
		t.Errorf("after a failed manual attempt: %+v", d)
	}
}

// Deliveries that exhausted the schedule are listed, page by page, and
// replayed in bulk; the replay delivers them with their webhook-ids.
func TestFailedListAndReplay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Schedule = []time.Duration{0, 10 * time.Millisecond}
	b.dispatcher(cfg)
	var up atomic.Bool
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) int {
		if up.Load() {
			return http.StatusOK
		}
		w.WriteHeader(http.StatusInternalServerError)
		return http.StatusInternalServerError
	})
	ids := b.finishN(rc.url(), 3)
	for _, id := range ids {
		b.waitStatus(id, linkflow.DeliveryFailed, 10*time.Second)
	}
	page1, next, err := b.svc.Failed(b.ctx, b.org, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	page2, end, err := b.svc.Failed(b.ctx, b.org, next, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page1) != 2 || next == "" || len(page2) != 1 || end != "" {
		t.Fatalf("pages: %d (next %q), %d (next %q)", len(page1), next, len(page2), end)
	}
	seen := map[string]bool{}
	for _, v := range append(page1, page2...) {
		seen[v.EventID] = true
		if v.Status != linkflow.DeliveryFailed || v.Attempts != 2 || v.FailedAt == nil || *v.LastStatusCode != 500 {
			t.Errorf("failed delivery = %+v", v)
		}
	}
	if len(seen) != 3 {
		t.Errorf("listed %d distinct events", len(seen))
	}
	if _, _, err := b.svc.Failed(b.ctx, b.org, "garbage", 2); !errors.Is(err, linkflow.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}

	up.Store(true)
	res, err := b.svc.ReplayFailed(b.ctx, b.org, webhooks.ReplayFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 3 || res.More {
		t.Errorf("replay = %+v", res)
	}
	for _, id := range ids {
		b.waitStatus(id, linkflow.DeliverySucceeded, 10*time.Second)
	}
	if left, _, _ := b.svc.Failed(b.ctx, b.org, "", 10); len(left) != 0 {
		t.Errorf("%d still failed after the replay", len(left))
	}
	for _, r := range rc.requests()[6:] {
		if r.status != http.StatusOK {
			t.Errorf("replayed request answered %d", r.status)
		}
	}
	// Nothing failed now: a second replay does nothing.
	if res, err := b.svc.ReplayFailed(b.ctx, b.org, webhooks.ReplayFilter{EventIDs: ids}); err != nil || res.Replayed != 0 {
		t.Errorf("second replay = %+v (%v)", res, err)
	}
}

// failingAtOnce is a bundle whose dispatcher makes one attempt per delivery,
// and a receiver that refuses every one (503): deliveries fail at once.
func failingAtOnce(t *testing.T) (*testBundle, *receiver) {
	t.Helper()
	b := setup(t)
	cfg := b.config()
	cfg.Schedule = []time.Duration{0}
	b.dispatcher(cfg)
	return b, newReceiver(t, answer(http.StatusServiceUnavailable))
}

// A replay that fails again puts the delivery back among the failed ones.
func TestReplayThatFailsStaysFailed(t *testing.T) {
	t.Parallel()
	b, rc := failingAtOnce(t)
	linkID, eventID := b.finish(rc.url())
	b.waitStatus(eventID, linkflow.DeliveryFailed, 10*time.Second)
	res, err := b.svc.ReplayFailed(b.ctx, b.org, webhooks.ReplayFilter{EventIDs: []string{eventID}})
	if err != nil || res.Replayed != 1 {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	testenv.Eventually(t, 10*time.Second, "the replay attempted", func() bool { return rc.count(eventID) == 2 })
	b.waitStatus(eventID, linkflow.DeliveryFailed, 10*time.Second)
	// A replay takes the deliveries that failed before it began: this one,
	// failed again after a replay's start (its clock a minute behind), is
	// not taken twice by a replay that pages on.
	early := webhooks.NewService(webhooks.ServiceConfig{Store: b.store, Feed: outbox.NewFeed(b.js), Logger: b.log,
		Now: func() time.Time { return time.Now().Add(-time.Minute) }})
	if res, err := early.ReplayFailed(b.ctx, b.org, webhooks.ReplayFilter{}); err != nil || res.Replayed != 0 {
		t.Fatalf("replay begun before the failure = %+v, %v", res, err)
	}
	if att := b.attempts(linkID); len(att) != 2 || att[1].Trigger != "replay" || att[1].Outcome != "failed" {
		t.Errorf("attempt log = %s", mustJSON(t, att))
	}
	if list, _, _ := b.svc.Failed(b.ctx, b.org, "", 10); len(list) != 1 {
		t.Errorf("failed list has %d entries", len(list))
	}
	// It failed once: the replay that failed too does not count it again.
	if n := counterValue(t, b, "linkflow_webhook_deliveries_finished_total", "failed"); n != 1 {
		t.Errorf("deliveries finished failed: %v, want 1", n)
	}
}

// racingStore is the real store where, at a bulk replay's first page, the
// page's first delivery is replayed by another caller and fails again
// between the page's read of the failed index and its read of the
// deliveries: listed by its first failure, read after its second.
type racingStore struct {
	*store.Store
	once  sync.Once
	again func(eventID string)
}

func (r *racingStore) FailedDeliveries(ctx context.Context, org, cursor string, limit int, since, until time.Time) ([]*linkflow.Delivery, string, error) {
	page, next, err := r.Store.FailedDeliveries(ctx, org, cursor, limit, since, until)
	if err == nil && len(page) > 0 {
		r.once.Do(func() {
			r.again(page[0].EventID)
			page[0], _, err = r.Store.LoadDelivery(ctx, org, page[0].EventID)
		})
	}
	return page, next, err
}

// A bulk replay passes over a delivery that failed again meanwhile (another
// replayed it) and replays the rest: it does not stop at it.
func TestReplayPassesOneFailedAgainMeanwhile(t *testing.T) {
	t.Parallel()
	b, rc := failingAtOnce(t)
	ids := b.finishN(rc.url(), 3)
	for _, id := range ids {
		b.waitStatus(id, linkflow.DeliveryFailed, 10*time.Second)
	}
	var raced string
	rs := &racingStore{Store: b.store, again: func(id string) {
		raced = id
		first := b.delivery(id).FailedAt
		if res, err := b.svc.ReplayFailed(b.ctx, b.org, webhooks.ReplayFilter{EventIDs: []string{id}}); err != nil || res.Replayed != 1 {
			t.Fatalf("the other replay = %+v, %v", res, err)
		}
		testenv.Eventually(t, 10*time.Second, "the other replay failed again", func() bool {
			d := b.delivery(id)
			return d.Status == linkflow.DeliveryFailed && d.FailedAt.After(first)
		})
	}}
	svc := webhooks.NewService(webhooks.ServiceConfig{Store: rs, Logger: b.log})
	res, err := svc.ReplayFailed(b.ctx, b.org, webhooks.ReplayFilter{})
	if err != nil || res.Replayed != 2 || res.More {
		t.Fatalf("replay = %+v, %v; want the two others replayed", res, err)
	}
	// Each attempted twice: its first attempt, then a replay (the raced
	// one's by the other caller).
	for _, id := range ids {
		testenv.Eventually(t, 10*time.Second, "replayed once: "+id, func() bool { return rc.count(id) == 2 })
	}
	if raced == "" {
		t.Fatal("no race was staged")
	}
}

// GET /v1/events: the organization's events in order, resumable by cursor,
// each the webhook body byte for byte with its id.
func TestEventsCatchUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var links []string
	for range 3 {
		l, _ := b.finish("")
		links = append(links, l)
	}
	p1, err := b.svc.Events(b.ctx, b.org, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Data) != 2 || !p1.HasMore || p1.NextCursor == nil {
		t.Fatalf("page 1 = %+v", p1)
	}
	p2, err := b.svc.Events(b.ctx, b.org, *p1.NextCursor, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Data) != 1 || p2.HasMore {
		t.Fatalf("page 2 = %+v", p2)
	}
	p3, err := b.svc.Events(b.ctx, b.org, *p2.NextCursor, 2)
	if err != nil || len(p3.Data) != 0 || *p3.NextCursor != *p2.NextCursor {
		t.Fatalf("page 3 = %+v, %v", p3, err)
	}
	for i, raw := range append(p1.Data, p2.Data...) {
		var ev struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				LinkID string `json:"linkId"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		stored := b.storedEvent(links[i])
		if ev.ID != linkflow.LinkEventID(links[i]) || ev.Data.LinkID != links[i] || ev.Type != linkflow.EventLinkCanceled {
			t.Errorf("event %d = %s", i, raw)
		}
		idPart := `{"id":"` + ev.ID + `",`
		if !bytes.Equal(append([]byte("{"), raw[len(idPart):]...), stored.Body) {
			t.Errorf("event %d body is not the stored body:\n%s\n%s", i, raw, stored.Body)
		}
	}
	if _, err := b.svc.Events(b.ctx, b.org, "nope", 2); !errors.Is(err, linkflow.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

// A page of events ends before the event whose body would take it past
// MaxPageBytes (one event at least), and its cursor resumes at that event:
// every event is listed once, in order.
func TestEventsPageBoundedInBytes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var links []string
	for range 5 {
		l, _ := b.finish("")
		links = append(links, l)
	}
	one := len(b.storedEvent(links[0]).Body)
	for _, tc := range []struct {
		max   int
		pages []int
	}{
		{max: 2*one + one/2, pages: []int{2, 2, 1}},
		{max: 1, pages: []int{1, 1, 1, 1, 1}},
	} {
		svc := webhooks.NewService(webhooks.ServiceConfig{Store: b.store, Feed: outbox.NewFeed(b.js), MaxPageBytes: tc.max})
		var got []string
		cursor := ""
		for i, want := range tc.pages {
			p, err := svc.Events(b.ctx, b.org, cursor, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Data) != want || p.HasMore != (i < len(tc.pages)-1) || p.NextCursor == nil {
				t.Fatalf("max %d bytes (a body is %d), page %d: %d events, hasMore %v; want %d", tc.max, one, i, len(p.Data), p.HasMore, want)
			}
			for _, raw := range p.Data {
				var ev struct {
					Data struct{ LinkID string } `json:"data"`
				}
				if err := json.Unmarshal(raw, &ev); err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.Data.LinkID)
			}
			cursor = *p.NextCursor
		}
		if !slices.Equal(got, links) {
			t.Fatalf("max %d bytes: listed %v, want %v", tc.max, got, links)
		}
	}
}
