package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks/verify"
)

// The fault tests of issue 14 run a fleet (api, worker, dispatcher) on a
// Redis and a NATS server they stop and start again, under a load of links
// created and claimed through the API. The suite runs them small;
// -faults.links runs them longer (docs/operations.md has the figures):
//
//	go test -p 1 -run 'TestFault' -timeout 30m ./cmd/linkflow/ -faults.links 2000 -v
var (
	faultLinksFlag  = flag.Int("faults.links", 0, "links each fault test runs (0: the suite's quick size)")
	faultOutageFlag = flag.Duration("faults.outage", 0, "how long Redis stays down in TestFaultRedisDownUnderLoad (0: 10s)")
)

// faultLinks is the number of links a fault test runs: ci in the suite, or
// -faults.links.
func faultLinks(ci int) int {
	if *faultLinksFlag > 0 {
		return *faultLinksFlag
	}
	return ci
}

// faultFleet is linkflow on servers the test stops and starts again: a
// redis-server with the append-only file on a fixed port and data directory
// (a clean stop writes it out, a start reads it back), an embedded NATS
// server whose JetStream stores to a fixed directory on a fixed port, and
// the processes. The test reaches linkflow the way customers and end users
// do, over HTTP, and receives its webhooks.
type faultFleet struct {
	t                   *testing.T
	redisPort, natsPort int
	redisDir, natsDir   string
	redis               *embedded.Redis
	nats                *server.Server
	keys                string
	rdb                 *redis.Client
	st                  *store.Store
	org, apiKey         string
	httpPort            int
	base                string
	hooks               *hookLog
	http                *http.Client

	mu      sync.Mutex
	answers []answer
}

// newFaultFleet starts a fleet's servers and makes its organization.
func newFaultFleet(t *testing.T) *faultFleet {
	t.Helper()
	f := plannedFaultFleet(t)
	f.startRedis()
	f.startNATS()
	f.setUp()
	return f
}

// plannedFaultFleet is a fleet whose servers are not started yet: their
// ports and directories are chosen.
func plannedFaultFleet(t *testing.T) *faultFleet {
	f := &faultFleet{t: t, redisPort: freeTCPPort(t), natsPort: freeTCPPort(t), redisDir: t.TempDir(), natsDir: t.TempDir(),
		keys: store.GenerateKey("ft1"), httpPort: freeTCPPort(t),
		http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	f.base = fmt.Sprintf("http://127.0.0.1:%d", f.httpPort)
	// The servers stop after the processes (cleanups run last first).
	t.Cleanup(func() {
		f.stopNATS()
		f.redis.Kill()
	})
	return f
}

// setUp makes the organization, its API key and the webhook receiver, once
// Redis runs.
func (f *faultFleet) setUp() {
	t := f.t
	t.Helper()
	f.rdb = redis.NewClient(&redis.Options{Addr: f.redis.Addr, PoolSize: 32})
	t.Cleanup(func() { _ = f.rdb.Close() })
	kr, err := store.ParseKeyring(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if f.st, err = store.New(store.Config{Redis: f.rdb, Keyring: kr}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	org, err := f.st.CreateOrg(ctx, "", "faults", "")
	if err != nil {
		t.Fatal(err)
	}
	f.org, f.apiKey = org.ID, store.NewAPIKey()
	if _, _, err := f.st.CreateAPIKey(ctx, org.ID, "faults", f.apiKey, nil); err != nil {
		t.Fatal(err)
	}
	if f.hooks, err = newHookLog(t, org.WebhookSecrets[0]); err != nil {
		t.Fatal(err)
	}
}

// startRedis starts (or starts again) the fleet's redis-server, with the
// append-only file, on its port and directory.
func (f *faultFleet) startRedis() {
	f.t.Helper()
	r, err := embedded.StartRedis(embedded.RedisOptions{Dir: f.redisDir, Port: f.redisPort, AppendOnly: true})
	if err != nil {
		f.t.Fatal(err)
	}
	f.redis = r
}

// startNATS starts (or starts again) the fleet's NATS server on its port
// and JetStream directory.
func (f *faultFleet) startNATS() {
	f.t.Helper()
	s, err := embedded.StartNATS(embedded.NATSOptions{Dir: f.natsDir, Port: f.natsPort})
	if err != nil {
		f.t.Fatal(err)
	}
	f.nats = s
}

func (f *faultFleet) stopNATS() {
	if f.nats != nil {
		f.nats.Shutdown()
		f.nats.WaitForShutdown()
	}
}

// common are the flags every process of the fleet takes.
func (f *faultFleet) common() []string {
	return []string{"--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", f.natsPort), "--redis-url", fmt.Sprintf("redis://127.0.0.1:%d", f.redisPort),
		"--encryption-keys", f.keys, "--sandbox", "--log-level", "warn"}
}

// The fleet's processes: started and ready, or only launched (launch*).
func (f *faultFleet) api() *proc {
	return startProc(f.t, "api", nil, f.apiArgs()...)
}

func (f *faultFleet) launchAPI() *proc {
	return launchProc(f.t, "api", nil, f.apiArgs()...)
}

func (f *faultFleet) apiArgs() []string {
	return append([]string{"api", "--http-addr", fmt.Sprintf("127.0.0.1:%d", f.httpPort), "--public-url", f.base,
		"--key-rate-limit", "0", "--client-rate-limit", "0"}, f.common()...)
}

func (f *faultFleet) worker(name string, args ...string) *proc {
	return startProc(f.t, name, nil, append(append([]string{"worker"}, f.common()...), args...)...)
}

func (f *faultFleet) launchWorker(name string, args ...string) *proc {
	return launchProc(f.t, name, nil, append(append([]string{"worker"}, f.common()...), args...)...)
}

func (f *faultFleet) dispatcher(name string, args ...string) *proc {
	return startProc(f.t, name, nil, f.dispatcherArgs(args)...)
}

func (f *faultFleet) launchDispatcher(name string, args ...string) *proc {
	return launchProc(f.t, name, nil, f.dispatcherArgs(args)...)
}

func (f *faultFleet) dispatcherArgs(args []string) []string {
	base := append([]string{"dispatcher", "--webhook-allow-private", "--webhook-schedule", "0,200ms,500ms,1s,2s,5s,10s"}, f.common()...)
	return append(base, args...)
}

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
			for i := int(next.Add(1)) - 1; i < n && !f.t.Failed(); i = int(next.Add(1)) - 1 {
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
				f.t.Errorf("create %d: %v", i, err)
				return ""
			}
			break
		}
		if !f.retryLater(res, a) {
			f.t.Errorf("create %d: %d %v %s", i, a.status, a.err, a.body)
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
			f.t.Errorf("claim %d (%s): %d %v %s", i, link.LinkID, a.status, a.err, a.body)
			return ""
		}
	}
}

// retryLater waits out a 503's Retry-After and says so; any other answer
// is not to be retried.
func (f *faultFleet) retryLater(res *loadResult, a answer) bool {
	if a.status != http.StatusServiceUnavailable || f.t.Failed() {
		return false
	}
	res.refused.Add(1)
	secs, err := strconv.Atoi(a.retryAfter)
	if err != nil || secs < 1 || secs > 10 {
		f.t.Errorf("a 503 with Retry-After %q", a.retryAfter)
		return false
	}
	time.Sleep(time.Duration(secs) * time.Second) // what the answer asked for
	return true
}

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

// probeLink is a pending link whose API view and hosted page sample reads.
type probeLink struct{ LinkID, ClaimCode string }

// sampleLink creates the link sample reads.
func (f *faultFleet) sampleLink() probeLink {
	f.t.Helper()
	a := f.call("create", "POST", "/v1/links", f.apiKey, map[string]any{"integrationId": "tmobile",
		"operations": []map[string]any{{"resource": "paymentMethod", "action": "read"}}}, nil)
	var l probeLink
	if a.status != http.StatusCreated || json.Unmarshal(a.body, &l) != nil {
		f.t.Fatalf("create the probe link: %d %v %s", a.status, a.err, a.body)
	}
	return l
}

// sample requests the customer API, the hosted page and /readyz every
// interval until stop closes, for a view of what clients see meanwhile.
func (f *faultFleet) sample(stop <-chan struct{}, interval time.Duration, l probeLink) {
	for {
		f.call("get", "GET", "/v1/links/"+l.LinkID, f.apiKey, nil, nil)
		f.call("hosted", "GET", "/link/"+l.LinkID+"?code="+url.QueryEscape(l.ClaimCode), "", nil, nil)
		f.call("readyz", "GET", "/readyz", "", nil, nil)
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
	}
}

// waitAlive fails the test when a process exited.
func waitAlive(t *testing.T, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.output())
		default:
		}
	}
}
