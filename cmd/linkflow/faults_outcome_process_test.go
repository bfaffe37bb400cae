package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/webhooks/verify"
)

// outcome is how the links ended, their webhooks and the provider's writes.
type outcome struct {
	links, succeeded, failed        int
	hooked, deliveries, duplicates  int // links with a webhook, requests, requests after the first per webhook-id
	manyIDs, badSignatures          int // links with more than one webhook-id, requests that did not verify
	writes, doubleWrites, missWrite int
}

func (o outcome) String() string {
	return fmt.Sprintf("links %d: succeeded %d, failed %d, lost %d; webhooks: %d links delivered, %d requests, %d duplicates "+
		"(same webhook-id again), %d links with more than one webhook-id, %d bad signatures; provider writes %d, "+
		"duplicated %d, missing %d", o.links, o.succeeded, o.failed, o.links-o.succeeded-o.failed, o.hooked, o.deliveries,
		o.duplicates, o.manyIDs, o.badSignatures, o.writes, o.doubleWrites, o.missWrite)
}

// settle waits until every link ended and its webhook arrived, then counts
// what happened to them.
func (f *faultFleet) settle(ids []string, accounts int, timeout time.Duration) outcome {
	f.t.Helper()
	ctx := context.Background()
	o := outcome{links: len(ids)}
	deadline := time.Now().Add(timeout)
	pending := slices.Clone(ids)
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []string
		for _, id := range pending {
			l, err := f.st.Link(ctx, f.org, id)
			if err != nil {
				f.t.Fatalf("link %s: %v", id, err)
			}
			switch {
			case l.Status == "succeeded":
				o.succeeded++
			case l.Status.Terminal():
				o.failed++
				f.t.Logf("link %s ended %s: %+v", id, l.Status, l.Error)
			default:
				still = append(still, id)
			}
		}
		if pending = still; len(pending) > 0 {
			time.Sleep(200 * time.Millisecond) // a poll interval
		}
	}
	for time.Now().Before(deadline) && f.hooks.linksDelivered(ids) < len(ids) {
		time.Sleep(200 * time.Millisecond) // a poll interval
	}
	f.hooks.count(ids, &o)
	writes := map[string]int{}
	sb, err := sandbox.New(sandbox.Config{Store: sandbox.NewRedisStore(f.rdb)})
	if err != nil {
		f.t.Fatal(err)
	}
	for a := range accounts {
		acct, err := sb.Account(ctx, f.org, "tmobile", fmt.Sprintf("acct%d", a))
		if err != nil {
			f.t.Fatal(err)
		}
		for _, w := range acct.WriteLog {
			writes[w.IdempotencyKey]++
			o.writes++
		}
	}
	for k, n := range writes {
		if n > 1 {
			o.doubleWrites += n - 1
			f.t.Logf("write %s ran %d times", k, n)
		}
	}
	for _, id := range ids {
		if writes[id+":0"] == 0 {
			o.missWrite++
		}
	}
	return o
}

// waitEnded waits until every link ended and then until its webhook
// arrived, and says when each happened.
func (f *faultFleet) waitEnded(ids []string, timeout time.Duration) (ended, delivered time.Time) {
	f.t.Helper()
	testenv.Eventually(f.t, timeout, fmt.Sprintf("%d links to end", len(ids)), func() bool {
		for _, id := range ids {
			l, err := f.st.Link(context.Background(), f.org, id)
			if err != nil || !l.Status.Terminal() {
				return false
			}
		}
		return true
	})
	ended = time.Now()
	testenv.Eventually(f.t, timeout, fmt.Sprintf("the webhooks of %d links", len(ids)), func() bool {
		return f.hooks.linksDelivered(ids) == len(ids)
	})
	return ended, time.Now()
}

// check fails the test unless every link succeeded and its webhook was
// delivered under one webhook-id, and each provider write ran once.
func (o outcome) check(t *testing.T) {
	t.Helper()
	if o.succeeded != o.links || o.hooked != o.links || o.manyIDs != 0 || o.badSignatures != 0 ||
		o.doubleWrites != 0 || o.missWrite != 0 || o.writes != o.links {
		t.Errorf("%s", o)
	}
}

// hookLog is the webhook receiver: it verifies each request and records the
// webhook-ids each link was delivered with, and how often.
type hookLog struct {
	url string
	v   *verify.Verifier
	// delay is how long the receiver takes to answer (under mu).
	delay time.Duration
	mu    sync.Mutex
	ids   map[string]map[string]int // link id -> webhook-id -> requests
	bad   int
}

func newHookLog(t *testing.T, secret string) (*hookLog, error) {
	v, err := verify.New(secret)
	if err != nil {
		return nil, err
	}
	h := &hookLog{v: v, ids: map[string]map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := h.v.Verify(r)
		h.mu.Lock()
		delay := h.delay
		h.mu.Unlock()
		time.Sleep(delay) // a receiver's own work
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		l, err := ev.Link()
		if err != nil {
			h.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if h.ids[l.LinkID] == nil {
			h.ids[l.LinkID] = map[string]int{}
		}
		h.ids[l.LinkID][ev.ID]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h, nil
}

func (h *hookLog) linksDelivered(ids []string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, id := range ids {
		if len(h.ids[id]) > 0 {
			n++
		}
	}
	return n
}

func (h *hookLog) count(ids []string, o *outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o.badSignatures = h.bad
	for _, id := range ids {
		byID := h.ids[id]
		if len(byID) > 0 {
			o.hooked++
		}
		if len(byID) > 1 {
			o.manyIDs++
		}
		for _, n := range byID {
			o.deliveries += n
			o.duplicates += n - 1
		}
	}
}
