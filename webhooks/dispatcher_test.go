package webhooks_test

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/webhooks/verify"
)

func TestSignatureVector(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	got, err := webhooks.Sign([]string{secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0),
		[]byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature = %q, want the published vector %q", got, want)
	}

	// During a rotation both secrets sign; a receiver knowing either one
	// verifies with the official library.
	next := store.NewWebhookSecret()
	sig, err := webhooks.Sign([]string{next, secret}, "msg_1", time.Now(), []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(sig, " "); len(parts) != 2 || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("rotation signature = %q, want two space-separated v1 signatures", sig)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	h.Set("webhook-signature", sig)
	for _, s := range []string{secret, next} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify([]byte(`{"a":1}`), h); err != nil {
			t.Errorf("official library rejects a rotation signature: %v", err)
		}
	}
}

// A real delivery: the body is the stored event byte for byte, webhook-id is
// the event id, and the official Standard Webhooks library verifies it, as
// does webhooks/verify.
func TestDeliveryVerifiesWithOfficialLibrary(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	b.dispatcher(b.config())

	before := time.Now()
	linkID, eventID := b.finish(rc.url())
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)

	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if req.id != eventID || strings.Contains(req.id, ".") {
		t.Errorf("webhook-id = %q, want the event id %q (without a dot)", req.id, eventID)
	}
	if ts, _ := strconv.ParseInt(req.timestamp, 10, 64); ts < before.Unix()-1 || ts > time.Now().Unix()+1 {
		t.Errorf("webhook-timestamp = %s, want the attempt's unix seconds", req.timestamp)
	}
	if ev := b.storedEvent(linkID); !bytes.Equal(req.body, ev.Body) {
		t.Errorf("body differs from the stored event:\n got %s\nwant %s", req.body, ev.Body)
	}
	if ct := req.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	wh, err := standardwebhooks.NewWebhook(b.secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(req.body, req.header); err != nil {
		t.Errorf("official library: %v", err)
	}
	v, err := verify.New(b.secret)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := v.VerifyBody(req.body, req.header)
	if err != nil {
		t.Fatalf("webhooks/verify: %v", err)
	}
	l, err := ev.Link()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != linkflow.EventLinkCanceled || l.LinkID != linkID || l.Status != "canceled" {
		t.Errorf("event = %s %+v", ev.Type, l)
	}

	att := b.attempts(linkID)
	if len(att) != 1 || att[0].Attempt != 1 || att[0].Trigger != "initial" || att[0].Outcome != "succeeded" ||
		att[0].StatusCode == nil || *att[0].StatusCode != 200 || att[0].WebhookID != eventID {
		t.Errorf("attempt log = %s", mustJSON(t, att))
	}
}

// During a secret rotation every delivery carries both signatures.
func TestRotatedSecretSignsTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusNoContent))
	b.dispatcher(b.config())
	old := b.secret
	next := store.NewWebhookSecret()
	if err := b.store.UpdateOrg(b.ctx, b.org, linkflow.OrgUpdate{WebhookSecret: next, PreviousSecretFor: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	_, eventID := b.finish(rc.url())
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
	req := rc.requests()[0]
	if n := len(strings.Fields(req.signature)); n != 2 {
		t.Fatalf("webhook-signature %q has %d signatures, want 2", req.signature, n)
	}
	for _, s := range []string{old, next} {
		wh, _ := standardwebhooks.NewWebhook(s)
		if err := wh.Verify(req.body, req.header); err != nil {
			t.Errorf("secret %d: %v", len(s), err)
		}
	}
}

// The dispatcher keeps an organization's secrets for SecretCacheTTL: a
// rotation signs webhooks once that has passed, not before.
func TestRotationReachesSignaturesWithinTheCacheTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusNoContent))
	var offset atomic.Int64
	cfg := b.config()
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg.SecretCacheTTL = time.Minute
	b.dispatcher(cfg)
	signedBy := func(eventID, secret string) bool {
		t.Helper()
		for _, r := range rc.requests() {
			if r.id == eventID {
				wh, _ := standardwebhooks.NewWebhook(secret)
				return len(strings.Fields(r.signature)) == 1 && wh.Verify(r.body, r.header) == nil
			}
		}
		t.Fatalf("no request for %s", eventID)
		return false
	}
	deliver := func() string {
		t.Helper()
		_, eventID := b.finish(rc.url())
		b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
		return eventID
	}

	old := b.secret
	first := deliver()
	next := store.NewWebhookSecret() // no overlap: one signature
	if err := b.store.UpdateOrg(b.ctx, b.org, linkflow.OrgUpdate{WebhookSecret: next}); err != nil {
		t.Fatal(err)
	}
	cached := deliver()
	offset.Store(int64(2 * time.Minute))
	rotated := deliver()
	if !signedBy(first, old) || !signedBy(cached, old) || !signedBy(rotated, next) {
		t.Errorf("signed by the old secret: before the rotation %v, within the TTL %v; by the new one after it %v",
			signedBy(first, old), signedBy(cached, old), signedBy(rotated, next))
	}
}

// Every status class, on a three-attempt schedule.
func TestStatusClasses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dispatcher(b.config())
	elsewhere := newReceiver(t, answer(http.StatusOK))

	tests := []struct {
		name     string
		respond  func(w http.ResponseWriter, r *http.Request, n int) int
		url      func(rc *receiver) string
		status   string
		attempts int
		check    func(t *testing.T, att []webhooks.Attempt)
	}{
		{name: "2xx", respond: answer(http.StatusNoContent), status: linkflow.DeliverySucceeded, attempts: 1},
		{
			name: "3xx is a failure and is not followed",
			respond: func(w http.ResponseWriter, r *http.Request, _ int) int {
				http.Redirect(w, r, elsewhere.url(), http.StatusFound)
				return http.StatusFound
			},
			status: linkflow.DeliveryFailed, attempts: 3,
			check: func(t *testing.T, att []webhooks.Attempt) {
				if !strings.Contains(att[0].Error, "redirects are not followed") || *att[0].StatusCode != 302 {
					t.Errorf("attempt = %s", mustJSON(t, att[0]))
				}
				if n := len(elsewhere.requests()); n != 0 {
					t.Errorf("the redirect target got %d requests", n)
				}
			},
		},
		{
			name: "4xx retries and keeps the response body",
			respond: func(w http.ResponseWriter, _ *http.Request, _ int) int {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"bad signature?"}` + strings.Repeat("x", 5000)))
				return http.StatusBadRequest
			},
			status: linkflow.DeliveryFailed, attempts: 3,
			check: func(t *testing.T, att []webhooks.Attempt) {
				if !strings.HasPrefix(att[0].ResponseBody, `{"error":"bad signature?"}`) || len(att[0].ResponseBody) != webhooks.MaxResponseBody {
					t.Errorf("response body kept = %d bytes %.40q", len(att[0].ResponseBody), att[0].ResponseBody)
				}
				if att[2].Outcome != "failed" || att[0].Outcome != "retrying" || att[0].NextRetryAt == nil {
					t.Errorf("attempt log = %s", mustJSON(t, att))
				}
			},
		},
		{name: "410 stops retrying", respond: answer(http.StatusGone), status: linkflow.DeliveryGone, attempts: 1},
		{
			name: "429 with Retry-After seconds",
			respond: func(w http.ResponseWriter, _ *http.Request, n int) int {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
					return http.StatusTooManyRequests
				}
				return 200
			},
			status: linkflow.DeliverySucceeded, attempts: 2,
			check: func(t *testing.T, att []webhooks.Attempt) {
				// The schedule says 20ms; Retry-After says 1s.
				if wait := *att[0].NextRetryAt - att[0].Timestamp; wait < 1000 || wait > 1200+att[0].DurationMs {
					t.Errorf("next retry %dms after a 429 with Retry-After: 1", wait)
				}
				if att[1].Timestamp < att[0].Timestamp+1000 {
					t.Errorf("retried %dms after Retry-After: 1", att[1].Timestamp-att[0].Timestamp)
				}
			},
		},
		{
			name: "503 with Retry-After date",
			respond: func(w http.ResponseWriter, _ *http.Request, n int) int {
				if n == 1 {
					w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
					w.WriteHeader(http.StatusServiceUnavailable)
					return http.StatusServiceUnavailable
				}
				return 200
			},
			status: linkflow.DeliverySucceeded, attempts: 2,
			check: func(t *testing.T, att []webhooks.Attempt) {
				if wait := *att[0].NextRetryAt - att[0].Timestamp; wait < 1000 || wait > 2200+att[0].DurationMs {
					t.Errorf("next retry %dms after Retry-After two seconds ahead", wait)
				}
			},
		},
		{
			name: "5xx retries until the schedule is exhausted", respond: answer(http.StatusInternalServerError),
			status: linkflow.DeliveryFailed, attempts: 3,
			check: func(t *testing.T, att []webhooks.Attempt) {
				for i, a := range att {
					if a.Attempt != i+1 || (i > 0 && a.Trigger != "retry") || *a.StatusCode != 500 {
						t.Errorf("attempt %d = %s", i, mustJSON(t, a))
					}
				}
			},
		},
		{
			name: "connection refused", url: func(*receiver) string { return "http://" + closedPort(t) + "/hook" },
			status: linkflow.DeliveryFailed, attempts: 3,
			check: func(t *testing.T, att []webhooks.Attempt) {
				if att[0].StatusCode != nil || att[0].Error != "connection refused" {
					t.Errorf("attempt = %s", mustJSON(t, att[0]))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) int {
				if tt.respond == nil {
					return 200
				}
				return tt.respond(w, r, n)
			})
			url := rc.url()
			if tt.url != nil {
				url = tt.url(rc)
			}
			linkID, eventID := b.finish(url)
			del := b.waitStatus(eventID, tt.status, 15*time.Second)
			att := b.attempts(linkID)
			if del.Attempts != tt.attempts || len(att) != tt.attempts {
				t.Fatalf("attempts: state %d, log %d, want %d: %s", del.Attempts, len(att), tt.attempts, mustJSON(t, att))
			}
			if tt.url == nil && rc.count(eventID) != tt.attempts {
				t.Errorf("receiver got %d requests, want %d", rc.count(eventID), tt.attempts)
			}
			if b.scheduled(eventID) {
				t.Errorf("a %s delivery is still in the retry schedule", del.Status)
			}
			if tt.check != nil {
				tt.check(t, att)
			}
		})
	}
}

// A receiver that never answers: each attempt times out.
func TestTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Timeout = 300 * time.Millisecond
	cfg.Schedule = []time.Duration{0, 10 * time.Millisecond}
	b.dispatcher(cfg)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) int {
		<-r.Context().Done()
		return 0
	})
	linkID, eventID := b.finish(rc.url())
	b.waitStatus(eventID, linkflow.DeliveryFailed, 10*time.Second)
	att := b.attempts(linkID)
	if len(att) != 2 {
		t.Fatalf("attempts = %s", mustJSON(t, att))
	}
	for _, a := range att {
		if a.StatusCode != nil || !strings.HasPrefix(a.Error, "timeout") || a.DurationMs < 300 {
			t.Errorf("attempt = %s", mustJSON(t, a))
		}
	}
}

// An event without a webhook URL is recorded as such and not sent.
func TestNoTarget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dispatcher(b.config())
	linkID, eventID := b.finish("")
	b.waitStatus(eventID, linkflow.DeliveryNoTarget, 10*time.Second)
	// The claim made with the state (which cannot know there is no URL) is
	// taken back before the message is acked.
	b.waitAcked(b.lastEventSeq())
	if b.scheduled(eventID) || len(b.attempts(linkID)) != 0 {
		t.Errorf("a no_target delivery was scheduled or attempted")
	}
	if _, err := b.svc.Redeliver(b.ctx, b.org, linkID); !errors.Is(err, linkflow.ErrNoTarget) {
		t.Errorf("redeliver without a URL: %v, want ErrNoTarget", err)
	}
}

// A JetStream message delivered again for an event whose delivery exists
// does not restart its schedule.
func TestRedeliveredMessageDoesNotRestartSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Schedule = []time.Duration{0, time.Hour}
	b.dispatcher(cfg)
	rc := newReceiver(t, answer(http.StatusInternalServerError))
	linkID, eventID := b.finish(rc.url())
	testenv.Eventually(t, 10*time.Second, "first attempt recorded", func() bool {
		d := b.delivery(eventID)
		return d != nil && d.Attempts == 1 && d.Step == 1
	})
	first := b.delivery(eventID)
	ev := b.storedEvent(linkID)
	m := outbox.EventMessage(b.org, eventID, ev.Type)
	// A new message id: JetStream's duplicate window must not be what saves us.
	ack, err := b.js.PublishMsg(b.ctx, &nats.Msg{Subject: m.Subject, Data: m.Data}, jetstream.WithMsgID(eventID+"-again"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitAcked(ack.Sequence)
	again := b.delivery(eventID)
	if again.Attempts != 1 || again.Step != 1 || !again.NextAt.Equal(first.NextAt) || rc.count(eventID) != 1 {
		t.Errorf("schedule restarted: before %+v, after %+v, receiver %d", first, again, rc.count(eventID))
	}
}

// An events consumer deleted under a running dispatcher is created again:
// the next event is delivered.
func TestDispatcherRecreatesADeletedConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	cfg := b.config()
	cfg.PullExpiry = time.Second // heartbeats every 500ms: a quiet deletion is noticed within seconds
	b.dispatcher(cfg)
	if err := b.js.DeleteConsumer(b.ctx, outbox.StreamEvents, outbox.DispatcherConsumer); err != nil {
		t.Fatal(err)
	}
	_, eventID := b.finish(rc.url())
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 20*time.Second)
}

// A dispatcher stopped before it started does not start: it would consume
// events only to hand each one back at once, with nothing left to stop it.
func TestDispatcherStoppedBeforeStartDoesNotStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d, err := webhooks.NewDispatcher(b.config())
	if err != nil {
		t.Fatal(err)
	}
	d.Stop()
	if err := d.Start(b.ctx); err == nil {
		d.Stop()
		t.Fatal("a stopped dispatcher started")
	}
	d.Stop()
}
