package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// succeeded runs a new link to success with result and returns its end.
func (b *bundle) succeeded(t *testing.T, result string) *linkflow.Finished {
	t.Helper()
	ctx := context.Background()
	l := b.create(t, func(in *linkflow.NewLink) { in.WebhookURL = "https://hooks.example.com/a" })
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "pass_good"); err != nil {
		t.Fatal(err)
	}
	r, err := b.st.BeginRun(ctx, b.org, l.ID, "tok", time.Minute)
	if err != nil || r.Verdict != linkflow.RunStart {
		t.Fatalf("begin: %+v %v", r, err)
	}
	r.Link.Status, r.Link.CompletedAt, r.Link.Result = linkflow.StatusSucceeded, b.clock.Now(), json.RawMessage(result)
	fin, err := b.st.FinishRun(ctx, r.Link, "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	return fin
}

// A successful link's result is stored once, in the link: its event's
// record keeps the body's parts around it, and every reader of the event
// (the events feed, the dispatcher's accept and load steps) gets the body
// whole, byte for byte the same.
func TestEventBodyKeepsTheResultOnce(t *testing.T) {
	t.Parallel()
	const result = `{"operations":[{"resource":"paymentMethod","action":"read","data":{"paymentMethods":[{"last4":"1111"}]}}]}`
	check := func(t *testing.T, b *bundle, stored int) {
		ctx := context.Background()
		fin := b.succeeded(t, result)
		evs, err := b.st.EventRecords(ctx, []string{fin.EventID})
		if err != nil {
			t.Fatal(err)
		}
		body := evs[fin.EventID].Body
		var got struct {
			Type string `json:"type"`
			Data struct {
				Status string          `json:"status"`
				Result json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &got); err != nil || got.Type != linkflow.EventLinkSucceeded ||
			got.Data.Status != "succeeded" || string(got.Data.Result) != result {
			t.Fatalf("the feed's body %s: %+v %v", body, got, err)
		}
		acc := b.accept(t, fin, 0, time.Minute)
		if acc.Event == nil || !bytes.Equal(acc.Event.Body, body) {
			t.Fatalf("accepted body %q, want %q", acc.Event.Body, body)
		}
		if _, ev, err := b.st.LoadDelivery(ctx, b.org, fin.EventID); err != nil || ev == nil || !bytes.Equal(ev.Body, body) {
			t.Fatalf("loaded body %+v %v, want %q", ev, err, body)
		}
		rec, err := b.st.Redis().HGetAll(ctx, b.st.KeyEvent(fin.EventID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range rec {
			n += bytes.Count([]byte(v), []byte(result))
		}
		if n != stored {
			t.Fatalf("the event's record holds the result %d times, want %d: %v", n, stored, rec)
		}
	}
	t.Run("kept by the link", func(t *testing.T) { check(t, setup(t), 0) })
	t.Run("links kept for less time than events", func(t *testing.T) {
		check(t, setupWith(t, func(c *store.Config) { c.Retention, c.EventRetention = time.Hour, 2*time.Hour }), 1)
	})
}
