package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// answer is one HTTP request of the test and what it got.
type answer struct {
	what       string // create, claim, get, hosted, readyz
	at         time.Time
	took       time.Duration
	status     int
	code       string // the error envelope's code
	retryAfter string
	err        error // no answer at all
	body       []byte
}

// call sends a request to the API and records the answer. (It runs on
// the load's goroutines too: it never ends the test.)
func (f *faultFleet) call(what, method, path, key string, body any, header map[string]string) answer {
	a := answer{what: what, at: time.Now()}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.err = err
			return a
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.base+path, rd)
	if err != nil {
		a.err = err
		return a
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.http.Do(req)
	if err != nil {
		a.err, a.took = err, time.Since(a.at)
	} else {
		a.body, _ = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		a.took, a.status, a.retryAfter = time.Since(a.at), resp.StatusCode, resp.Header.Get("Retry-After")
		var e struct{ Error struct{ Code string } }
		if json.Unmarshal(a.body, &e) == nil {
			a.code = e.Error.Code
		}
	}
	f.mu.Lock()
	f.answers = append(f.answers, a)
	f.mu.Unlock()
	return a
}

// between returns the answers to requests sent at or after from that came
// back before to.
func (f *faultFleet) between(from, to time.Time) []answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []answer
	for _, a := range f.answers {
		if !a.at.Before(from) && a.at.Add(a.took).Before(to) {
			out = append(out, a)
		}
	}
	return out
}

// sent returns the answers to requests sent at or after from and before
// to, whenever they came back.
func (f *faultFleet) sent(from, to time.Time) []answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []answer
	for _, a := range f.answers {
		if !a.at.Before(from) && a.at.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

// checkAnswers fails the test for an answer that is neither expected nor
// 503 with Retry-After (a 500, no answer at all), or slower than slowest.
func (f *faultFleet) checkAnswers(slowest time.Duration) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	bad := 0
	for _, a := range f.answers {
		var why string
		switch {
		case a.err != nil:
			why = a.err.Error()
		case a.status >= 500 && (a.status != http.StatusServiceUnavailable || a.retryAfter == ""):
			why = "not 503 with Retry-After"
		case a.took > slowest:
			why = "slower than " + slowest.String()
		default:
			continue
		}
		if bad++; bad <= 10 {
			f.t.Errorf("%s at %s: %d %s after %s: %s: %.200s", a.what, a.at.Format("15:04:05.000"), a.status, a.code,
				a.took.Round(time.Millisecond), why, a.body)
		}
	}
	if bad > 10 {
		f.t.Errorf("... %d bad answers in all", bad)
	}
}

// loadResult is what a load ran: the links it created and claimed.
type loadResult struct {
	mu      sync.Mutex
	ids     []string // claimed links, in the order of their claims
	claimed atomic.Int32
	refused atomic.Int32 // 503s the load met and retried
}

func (r *loadResult) links() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// card is the write operation's arguments.
var card = map[string]string{"cardNumber": "4242424242424242", "expirationDate": "12/30", "cvv": "123",
	"nameOnCard": "Jane Doe", "billingZip": "10001"}

// load creates and claims n links through the API at about rate per
// second from 8 clients, each link writing to one of accounts sandbox
// accounts, the way a careful client does: a create is retried with its
// Idempotency-Key and a claim again after a 503, honouring Retry-After.
// It returns at once; done closes when every link is claimed (or the test
// failed).
func (f *faultFleet) load(n, accounts int, rate float64) (*loadResult, <-chan struct{}) {
	res := &loadResult{}
	done := make(chan struct{})
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	var next atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && !f.t.Failed() && !f.closed.Load(); i = int(next.Add(1)) - 1 {
				<-tick.C
				if id := f.createAndClaim(res, i, accounts); id != "" {
					res.mu.Lock()
					res.ids = append(res.ids, id)
					res.mu.Unlock()
					res.claimed.Add(1)
				}
			}
		})
	}
	go func() {
		wg.Wait()
		tick.Stop()
		close(done)
	}()
	// A test that ends early (it failed) stops the load before it goes:
	// nothing may report to it afterwards.
	f.t.Cleanup(func() {
		f.closed.Store(true)
		<-done
	})
	return res, done
}

// createAndClaim runs one link of the load; "" when it could not.
func (f *faultFleet) createAndClaim(res *loadResult, i, accounts int) string {
	idem := map[string]string{"Idempotency-Key": fmt.Sprintf("fault-%d", i)}
	body := map[string]any{"integrationId": "tmobile", "webhookUrl": f.hooks.url,
		"operations": []map[string]any{{"resource": "paymentMethod", "action": "write", "arguments": card}}}
	var link struct{ LinkID, ClaimCode string }
	for {
		a := f.call("create", "POST", "/v1/links", f.apiKey, body, idem)
		if a.status == http.StatusCreated {
			if err := json.Unmarshal(a.body, &link); err != nil {
				f.failLoad("create %d: %v", i, err)
				return ""
			}
			break
		}
		if !f.retryLater(res, a) {
			f.failLoad("create %d: %d %v %s", i, a.status, a.err, a.body)
			return ""
		}
	}
	claim := map[string]any{"claimCode": link.ClaimCode,
		"credentials": map[string]string{"username": fmt.Sprintf("acct%d", i%accounts), "password": "pass_good"}}
	for try := 0; ; try++ {
		a := f.call("claim", "POST", "/v1/links/"+link.LinkID+"/claim", "", claim, nil)
		switch {
		case a.status == http.StatusAccepted:
			return link.LinkID
		case a.status == http.StatusConflict && try > 0:
			// An earlier try went through though its answer was a 503.
			return link.LinkID
		case !f.retryLater(res, a):
			f.failLoad("claim %d (%s): %d %v %s", i, link.LinkID, a.status, a.err, a.body)
			return ""
		}
	}
}

// failLoad fails the test from the load's goroutines, unless the test is
// over.
func (f *faultFleet) failLoad(format string, args ...any) {
	if !f.closed.Load() {
		f.t.Errorf(format, args...)
	}
}

// retryLater waits out a 503's Retry-After and says so; any other answer
// is not to be retried.
func (f *faultFleet) retryLater(res *loadResult, a answer) bool {
	if a.status != http.StatusServiceUnavailable || f.t.Failed() || f.closed.Load() {
		return false
	}
	res.refused.Add(1)
	secs, err := strconv.Atoi(a.retryAfter)
	if err != nil || secs < 1 || secs > 10 {
		f.failLoad("a 503 with Retry-After %q", a.retryAfter)
		return false
	}
	time.Sleep(time.Duration(secs) * time.Second) // what the answer asked for
	return true
}

// latencies sums up answers: how many, by status, and the slowest.
func latencies(as []answer) string {
	if len(as) == 0 {
		return "none"
	}
	byStatus := map[int]int{}
	var took []time.Duration
	for _, a := range as {
		byStatus[a.status]++
		took = append(took, a.took)
	}
	slices.Sort(took)
	var parts []string
	for _, s := range slices.Sorted(func(yield func(int) bool) {
		for s := range byStatus {
			if !yield(s) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%d x%d", s, byStatus[s]))
	}
	return fmt.Sprintf("%d answers (%s), median %s, slowest %s", len(as), strings.Join(parts, ", "),
		took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}
