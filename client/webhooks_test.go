package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow/client"
	"github.com/linkflow/linkflow/internal/testenv"
)

// hookServer is a webhook receiver answering status (settable).
func hookServer(t *testing.T, status int) (string, *atomic.Int64) {
	t.Helper()
	var st atomic.Int64
	st.Store(int64(status))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(st.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", &st
}

// Webhooks that exhaust their schedule, listed across pages and replayed.
func TestFailedWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	hook, status := hookServer(t, http.StatusInternalServerError)
	var links []*client.CreatedLink
	for range 3 {
		l := b.create(t, client.CreateLinkRequest{WebhookURL: hook})
		b.claim(t, l, "user_good")
		links = append(links, l)
	}
	var failed []*client.Delivery
	testenv.Eventually(t, 20*time.Second, "three failed deliveries", func() bool {
		failed = failed[:0]
		for d, err := range b.lf.FailedWebhooks(ctx, client.ListFailedWebhooksParams{Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			failed = append(failed, d)
		}
		return len(failed) == 3
	})
	for _, d := range failed {
		if d.Status != "failed" || d.FailedAt == nil || d.LastStatusCode == nil || *d.LastStatusCode != 500 {
			t.Fatalf("failed delivery %+v", d)
		}
	}
	page, err := b.lf.ListFailedWebhooks(ctx, client.ListFailedWebhooksParams{Limit: 2})
	if err != nil || len(page.Data) != 2 || page.NextCursor == nil {
		t.Fatalf("first page %+v, %v", page, err)
	}

	status.Store(http.StatusNoContent)
	res, err := b.lf.ReplayFailedWebhooks(ctx, client.ReplayRequest{EventIDs: []string{failed[0].EventID}})
	if err != nil || res.Replayed != 1 || res.More {
		t.Fatalf("replay one: %+v, %v", res, err)
	}
	res, err = b.lf.ReplayFailedWebhooks(ctx, client.ReplayRequest{})
	if err != nil || res.Replayed != 2 {
		t.Fatalf("replay the rest: %+v, %v", res, err)
	}
	for _, l := range links {
		testenv.Eventually(t, 15*time.Second, "the replayed delivery of "+l.LinkID, func() bool {
			d, err := b.lf.ListLinkDeliveries(ctx, l.LinkID)
			if err != nil {
				t.Fatal(err)
			}
			return d.Delivery != nil && d.Delivery.Status == "succeeded"
		})
	}
}
