package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
)

// A dispatcher process killed (SIGKILL) in the middle of an event's retries:
// a new dispatcher process goes on with the schedule kept in Redis, and the
// webhook arrives once the receiver is back.
func TestDispatcherKilledMidRetryStillDelivers(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	var up atomic.Bool
	var requests, delivered atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	ctx := context.Background()
	c, err := f.st.CreateLink(ctx, linkflow.NewLink{OrgID: f.org, IntegrationID: "tmobile", WebhookURL: receiver.URL,
		Operations: []linkflow.Operation{readPM}, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fin, err := f.st.FailLink(ctx, f.org, c.Link.ID, linkflow.LinkError{Code: linkflow.FailureDeclined, Message: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.pub.Publish(ctx, fin.Event); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"dispatcher", "--nats-url", f.natsURL, "--encryption-keys", f.keys}, redisArgs(f.renv)...)
	args = append(args,
		"--log-level", "warn", "--webhook-allow-private", "--webhook-schedule", "0,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
		// A kill can land while an attempt is claimed: the claim comes back
		// after the visibility timeout, kept short here.
		"--webhook-timeout", "1s", "--webhook-visibility", "2s")
	first := startProc(t, "dispatcher-killed", nil, args...)
	testenv.Eventually(t, 20*time.Second, "a few failed attempts", func() bool { return requests.Load() >= 2 })
	first.kill()
	before := requests.Load()
	d, _, err := f.st.LoadDelivery(ctx, f.org, fin.EventID)
	if err != nil || d.Status != linkflow.DeliveryPending {
		t.Fatalf("delivery after the kill: %+v %v", d, err)
	}

	up.Store(true)
	startProc(t, "dispatcher-next", nil, args...)
	testenv.Eventually(t, 30*time.Second, "the webhook after the restart", func() bool { return delivered.Load() >= 1 })
	testenv.Eventually(t, 10*time.Second, "the delivery to be recorded", func() bool {
		d, _, err := f.st.LoadDelivery(ctx, f.org, fin.EventID)
		return err == nil && d.Status == linkflow.DeliverySucceeded
	})
	t.Logf("%d failed attempts before the kill, %d requests in all", before, requests.Load())
}

// A dispatcher process collects garbage at GOGC 400 unless GOGC says
// otherwise (dispatcherGCPercent).
func TestDispatcherGCTarget(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	args := append([]string{"dispatcher", "--nats-url", f.natsURL, "--encryption-keys", f.keys,
		"--log-level", "warn"}, redisArgs(f.renv)...)
	for _, tt := range []struct {
		gogc string
		want float64
	}{{"", dispatcherGCPercent}, {"150", 150}} {
		p := startProc(t, "dispatcher-gogc-"+tt.gogc, []string{"GOGC=" + tt.gogc}, args...)
		got, err := p.metric("go_gc_gogc_percent")
		if err != nil || got != tt.want {
			t.Errorf("GOGC=%q: go_gc_gogc_percent %v (%v), want %v", tt.gogc, got, err, tt.want)
		}
		p.stop()
	}
}
