package bench

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkflow/linkflow/webhooks/verify"
)

// receiver is bench's webhook receiver: it verifies every signature with
// webhooks/verify and notes when each link's webhook arrived.
type receiver struct {
	srv      *http.Server
	url      string
	verifier *verify.Verifier

	mu       sync.Mutex
	arrived  map[string]time.Time
	stages   map[string][3]int64 // claimedAt, startedAt, completedAt (ms) from the event
	waiters  map[string]chan struct{}
	dupes    atomic.Int64
	bad      atomic.Int64
	received atomic.Int64
}

func startReceiver(addr, publicURL, secret string) (*receiver, error) {
	v, err := verify.New(secret)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &receiver{verifier: v, arrived: map[string]time.Time{}, waiters: map[string]chan struct{}{},
		stages: map[string][3]int64{}}
	r.url = publicURL
	if r.url == "" {
		r.url = "http://" + ln.Addr().String()
	}
	r.url = strings.TrimRight(r.url, "/") + "/webhook"
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	ev, err := r.verifier.Verify(req)
	if err != nil {
		r.bad.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.received.Add(1)
	var data struct {
		LinkID      string `json:"linkId"`
		ClaimedAt   int64  `json:"claimedAt"`
		StartedAt   int64  `json:"startedAt"`
		CompletedAt int64  `json:"completedAt"`
	}
	_ = json.Unmarshal(ev.Data, &data)
	r.mu.Lock()
	if _, seen := r.arrived[data.LinkID]; seen {
		r.dupes.Add(1)
	} else {
		r.arrived[data.LinkID] = now
		r.stages[data.LinkID] = [3]int64{data.ClaimedAt, data.StartedAt, data.CompletedAt}
		if ch := r.waiters[data.LinkID]; ch != nil {
			close(ch)
			delete(r.waiters, data.LinkID)
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wait returns a channel closed when linkID's webhook has arrived.
func (r *receiver) wait(linkID string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if _, ok := r.arrived[linkID]; ok {
		close(ch)
		return ch
	}
	r.waiters[linkID] = ch
	return ch
}

// at is when linkID's webhook arrived, and the stages of the link it
// reported.
func (r *receiver) at(linkID string) (time.Time, [3]int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.arrived[linkID]
	return t, r.stages[linkID], ok
}

// count is how many links' webhooks have arrived.
func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.arrived)
}

func (r *receiver) close() { _ = r.srv.Close() }
