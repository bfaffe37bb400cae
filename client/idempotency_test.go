package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/linkflow/linkflow/client"
)

// CreateLink's automatic Idempotency-Key against linkflow itself: a repeat
// with the key answers the first link, and an answer lost on the way back
// is retried into that same link.
func TestCreateIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	rt := &flakyTransport{}
	lf := newStackClient(t, b.stack.URL, b.stack.APIKey, &http.Client{Transport: rt})
	req := client.CreateLinkRequest{IntegrationID: "tmobile", Operations: []client.OperationInput{readOp}, ExternalUserID: "idem-1"}
	first, err := lf.CreateLink(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	key := rt.keys()[0]
	if key == "" || first.Replayed {
		t.Fatalf("key %q, first %+v", key, first)
	}
	again := req
	again.IdempotencyKey = key
	second, err := lf.CreateLink(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if second.LinkID != first.LinkID || second.ClaimCode != first.ClaimCode || !second.Replayed {
		t.Fatalf("repeat with key %s: %+v, want %s replayed", key, second, first.LinkID)
	}
	// The same key with another body is a conflict.
	again.ExternalUserID = "idem-other"
	if _, err := lf.CreateLink(ctx, again); !isCode(err, client.CodeConflict) {
		t.Fatalf("key reused with another body: %v", err)
	}

	// linkflow creates the link, the answer is lost, the client retries.
	rt.dropNext.Store(true)
	req.ExternalUserID = "idem-2"
	lost, err := lf.CreateLink(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	keys := rt.keys()
	if n := len(keys); n != 5 || keys[3] != keys[4] || keys[3] == key {
		t.Fatalf("keys %v: want the lost try and its retry to share a new key", keys)
	}
	if !lost.Replayed {
		t.Fatalf("the retry after a lost answer was not a replay: %+v", lost)
	}
	n := 0
	for l, err := range b.lf.Links(ctx, client.ListLinksParams{ExternalUserID: "idem-2"}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.LinkID != lost.LinkID {
			t.Fatalf("a second link %s", l.LinkID)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d links for one create", n)
	}
}

// flakyTransport records the Idempotency-Key of each request and, when
// dropNext is set, lets one request reach linkflow but loses its answer.
type flakyTransport struct {
	dropNext atomic.Bool
	mu       sync.Mutex
	sent     []string
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.sent = append(f.sent, r.Header.Get("Idempotency-Key"))
	f.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && f.dropNext.CompareAndSwap(true, false) {
		resp.Body.Close()
		return nil, errors.New("connection reset (simulated, after linkflow answered)")
	}
	return resp, err
}

func (f *flakyTransport) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sent...)
}
