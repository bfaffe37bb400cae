package webhooks_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
)

// A receiver down for a while, then up, receives every event: each
// webhook-id at least once. Extra deliveries are counted and reported.
func TestReceiverDownThenUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Schedule = []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond}
	cfg.BreakerCooldown = 50 * time.Millisecond
	b.dispatcher(cfg)
	var up atomic.Bool
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) int {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	const n = 25
	ids := make([]string, n)
	for i := range ids {
		_, ids[i] = b.finish(rc.url())
	}
	testenv.Eventually(t, 20*time.Second, "every event tried while the receiver is down", func() bool {
		for _, id := range ids {
			if rc.count(id) < 1 {
				return false
			}
		}
		return true
	})
	up.Store(true)
	for _, id := range ids {
		b.waitStatus(id, linkflow.DeliverySucceeded, 30*time.Second)
	}
	delivered := map[string]int{}
	refused := 0
	for _, r := range rc.requests() {
		if r.status == http.StatusOK {
			delivered[r.id]++
		} else {
			refused++
		}
	}
	extra := 0
	for _, id := range ids {
		if delivered[id] == 0 {
			t.Errorf("event %s never delivered", id)
		}
		extra += max(delivered[id]-1, 0)
	}
	t.Logf("receiver down then up: %d events, %d requests answered 503 while down, %d webhook-ids delivered, %d extra deliveries",
		n, refused, len(delivered), extra)
}

// A dispatcher stopped between attempts; a new one (same Redis and
// JetStream) makes the retry, continuing the schedule.
func TestRestartMidRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Schedule = []time.Duration{0, time.Second, time.Second}
	cfg.UserAgent = "first"
	first := b.dispatcher(cfg)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) int {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	linkID, eventID := b.finish(rc.url())
	testenv.Eventually(t, 10*time.Second, "first attempt recorded", func() bool {
		d := b.delivery(eventID)
		return d != nil && d.Attempts == 1
	})
	first.Stop()
	if !b.scheduled(eventID) {
		t.Fatal("the retry is not in the schedule after the dispatcher stopped")
	}

	cfg.UserAgent = "second"
	b.dispatcher(cfg)
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
	reqs := rc.requests()
	if len(reqs) != 2 || reqs[1].userAgent != "second" {
		t.Fatalf("requests: %d, last by %q", len(reqs), reqs[len(reqs)-1].userAgent)
	}
	if att := b.attempts(linkID); len(att) != 2 || att[1].Trigger != "retry" || att[1].Attempt != 2 {
		t.Errorf("attempt log = %s", mustJSON(t, att))
	}
}

// A dispatcher stopped while an attempt hangs cancels it after its grace
// period and hands it back; the next dispatcher delivers it.
func TestStopMidAttemptHandsBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.ShutdownGrace = 50 * time.Millisecond
	cfg.UserAgent = "first"
	first := b.dispatcher(cfg)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) int {
		if r.UserAgent() == "first" {
			<-r.Context().Done()
			return 0
		}
		return http.StatusOK
	})
	_, eventID := b.finish(rc.url())
	testenv.Eventually(t, 10*time.Second, "the first attempt in flight", func() bool { return rc.count(eventID) == 1 })
	first.Stop()
	if d := b.delivery(eventID); d.Attempts != 0 || d.Status != linkflow.DeliveryPending || !b.scheduled(eventID) {
		t.Fatalf("after stop: %+v, scheduled %v", d, b.scheduled(eventID))
	}
	cfg.UserAgent = "second"
	b.dispatcher(cfg)
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
	if reqs := rc.requests(); reqs[len(reqs)-1].userAgent != "second" {
		t.Errorf("delivered by %q", reqs[len(reqs)-1].userAgent)
	}
}

// A dispatcher that claimed a retry and vanished without finishing it: the
// retry comes back after the visibility timeout and another dispatcher
// delivers it.
func TestVanishedClaimComesBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Schedule = []time.Duration{0, 300 * time.Millisecond, 300 * time.Millisecond}
	first := b.dispatcher(cfg)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) int {
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	_, eventID := b.finish(rc.url())
	testenv.Eventually(t, 10*time.Second, "first attempt recorded", func() bool {
		d := b.delivery(eventID)
		return d != nil && d.Attempts == 1
	})
	first.Stop()

	// The vanishing dispatcher: it claims the due retry and is never heard
	// of again.
	const visibility = 1500 * time.Millisecond
	var claimedAt time.Time
	testenv.Eventually(t, 10*time.Second, "the retry claimed", func() bool {
		claimedAt = time.Now()
		refs, _, err := b.store.ClaimDueDeliveries(b.ctx, claimedAt, 10, visibility)
		return err == nil && len(refs) == 1 && refs[0].EventID == eventID
	})
	b.dispatcher(cfg)
	b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	if reqs[1].at.Before(claimedAt.Add(visibility - 10*time.Millisecond)) {
		t.Errorf("retried %s after the claim, before its visibility timeout %s", reqs[1].at.Sub(claimedAt), visibility)
	}
}

// One receiver hangs (never answers while the test runs); another's
// deliveries all complete meanwhile. The hanging host holds its own slots
// (PerHostConcurrency) and nobody else's.
func TestHangingReceiverDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Concurrency = 6
	cfg.PerHostConcurrency = 2
	cfg.Timeout = time.Minute
	cfg.Visibility = 2 * time.Minute
	cfg.HostRetryDelay = 50 * time.Millisecond
	cfg.HostQueue = 3                          // the rest overflow, holding global slots for a moment
	cfg.HostQueueWait = 100 * time.Millisecond // then the queued ones are deferred too
	cfg.HostOverflowWait = 50 * time.Millisecond
	cfg.ShutdownGrace = 5 * time.Second
	b.dispatcher(cfg)

	release := make(chan struct{})
	var inFlight, peak atomic.Int32
	hanging := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) int {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) }) // before the receiver and the dispatcher stop
	healthy := newReceiver(t, answer(http.StatusNoContent))

	stuck := b.finishN(hanging.url(), 10)
	testenv.Eventually(t, 10*time.Second, "the hanging receiver holding requests", func() bool { return inFlight.Load() == 2 })
	for _, id := range b.finishN(healthy.url(), 20) {
		b.waitStatus(id, linkflow.DeliverySucceeded, 20*time.Second)
	}
	// Everything healthy went through while the hanging receiver still held
	// its requests, and never more than its share.
	if n := inFlight.Load(); n != 2 {
		t.Errorf("hanging receiver holds %d requests now, want 2", n)
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("hanging receiver held up to %d requests, want at most PerHostConcurrency 2", p)
	}
	for _, id := range stuck {
		if d := b.delivery(id); d.Status != linkflow.DeliveryPending || d.Attempts != 0 {
			t.Errorf("stuck delivery %s: %+v", id, d)
		}
	}
	// The hanging host's queued deliveries give up their wait and go back to
	// the schedule.
	testenv.Eventually(t, 10*time.Second, "deliveries deferred for the busy host", func() bool {
		return counterValue(t, b, "linkflow_webhook_deferred_total", "host_busy") > 0
	})
}

// A busy but healthy host: deliveries beyond its slots queue for the next
// free one in order, instead of going back to the schedule for a second.
// Those behind a full queue wait for room in it (HostOverflowWait) and go out
// at the host's pace too.
func TestBusyHostQueuesInsteadOfDeferring(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		queue int // HostQueue; 0 for the default (1024)
	}{
		{"room in the queue", 0},
		{"a full queue", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			cfg := b.config()
			cfg.PerHostConcurrency = 2
			cfg.HostQueue = tc.queue
			cfg.HostOverflowWait = time.Minute // room comes every few ms: a deferral would be the bug
			cfg.HostRetryDelay = time.Minute   // and would fail the test's deadline
			b.dispatcher(cfg)
			slow := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) int {
				select {
				case <-time.After(10 * time.Millisecond): // a receiver that takes its time, not a wait for an event
				case <-r.Context().Done():
				}
				return http.StatusNoContent
			})
			for _, id := range b.finishN(slow.url(), 30) {
				b.waitStatus(id, linkflow.DeliverySucceeded, 20*time.Second)
			}
			if deferred := counterValue(t, b, "linkflow_webhook_deferred_total", "host_busy"); deferred != 0 {
				t.Errorf("%v deliveries went back to the schedule although their host was only busy", deferred)
			}
		})
	}
}

// The SSRF guard refuses targets that are not public, judged on the address
// dialled: a public-looking name that resolves to 127.0.0.1 is refused too.
func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) int {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("internal service answer"))
		return http.StatusOK
	})
	_, port, _ := net.SplitHostPort(rc.srv.Listener.Addr().String())
	cfg := b.config()
	cfg.AllowPrivate = false
	cfg.Schedule = []time.Duration{0}
	cfg.Resolver = fakeResolver{
		"rebind.example.com":      {netip.MustParseAddr("127.0.0.1")},
		"mapped.example.com":      {netip.MustParseAddr("::ffff:127.0.0.1")},
		"metadata.example.com":    {netip.MustParseAddr("169.254.169.254")},
		"hooks.allowed.test":      {netip.MustParseAddr("127.0.0.1")},
		"hooks.named.test":        {netip.MustParseAddr("127.0.0.1")},
		"mixed.example.com":       {netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.168.1.1")},
		"nat64-loop.example.com":  {netip.MustParseAddr("64:ff9b::7f00:1")},
		"cgnat.example.com":       {netip.MustParseAddr("100.64.1.1")},
		"unique-local.example.io": {netip.MustParseAddr("fd12::1")},
	}
	// The loopback range is allowlisted, for hooks.allowed.test only.
	cfg.Allowlist = []string{"hooks.allowed.test", "127.0.0.0/8"}
	b.dispatcher(cfg)

	tests := []struct{ url, reason string }{
		{"http://127.0.0.1:" + port + "/hook", "loopback"},
		{"http://rebind.example.com:" + port + "/hook", "loopback"},
		{"http://mapped.example.com:" + port + "/hook", "loopback"},
		{"http://[::1]:" + port + "/hook", "loopback"},
		{"http://0.0.0.0:" + port + "/hook", "unspecified"},
		{"http://metadata.example.com/latest/meta-data", "cloud metadata"},
		{"http://169.254.169.254/latest/meta-data", "cloud metadata"},
		{"http://[fd00:ec2::254]/latest/meta-data", "cloud metadata"},
		{"http://mixed.example.com/hook", "private"},
		{"http://nat64-loop.example.com:" + port + "/hook", "loopback"},
		{"http://cgnat.example.com/hook", "carrier-grade NAT"},
		{"http://unique-local.example.io/hook", "unique-local"},
		{"http://[fe80::1]/hook", "link-local"},
		{"http://224.0.0.1/hook", "multicast"},
		// A name resolving into the allowlisted range, but not the listed one.
		{"http://hooks.named.test:" + port + "/hook", "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			linkID, eventID := b.finish(tt.url)
			b.waitStatus(eventID, linkflow.DeliveryFailed, 10*time.Second)
			att := b.attempts(linkID)
			if len(att) != 1 || !strings.Contains(att[0].Error, "refused to connect") ||
				!strings.Contains(att[0].Error, tt.reason) {
				t.Errorf("attempt = %s, want refused as %s", mustJSON(t, att), tt.reason)
			}
			// The log names no address a name resolved to: it would map
			// the network the dispatcher is in.
			for _, addr := range []string{"127.0.0.1", "169.254.169.254", "10.1.2.3", "100.64.1.1", "fd12::1", "7f00:1"} {
				if len(att) == 1 && strings.Contains(att[0].Error, addr) {
					t.Errorf("attempt = %s names %s", mustJSON(t, att), addr)
				}
			}
			if rc.count(eventID) != 0 {
				t.Errorf("the refused target received the webhook")
			}
		})
	}
	t.Run("allowlisted host", func(t *testing.T) {
		t.Parallel()
		linkID, eventID := b.finish("http://hooks.allowed.test:" + port + "/hook")
		b.waitStatus(eventID, linkflow.DeliverySucceeded, 10*time.Second)
		if rc.count(eventID) != 1 {
			t.Errorf("receiver got %d requests", rc.count(eventID))
		}
		// Any organization may target an allowlisted internal host: what it
		// answers is not shown in the delivery log.
		att := b.attempts(linkID)
		if len(att) != 1 || att[0].StatusCode == nil || *att[0].StatusCode != http.StatusOK || att[0].ResponseBody != "" {
			t.Errorf("attempt = %s, want 200 without the response body", mustJSON(t, att))
		}
	})
	t.Run("allowlisted host that does not speak HTTP", func(t *testing.T) {
		t.Parallel()
		// What it sends is not shown either, even as an error's words.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6 internal banner\r\n"))
				c.Close()
			}
		}()
		_, raw, _ := net.SplitHostPort(l.Addr().String())
		linkID, eventID := b.finish("http://hooks.allowed.test:" + raw + "/hook")
		b.waitStatus(eventID, linkflow.DeliveryFailed, 10*time.Second)
		att := b.attempts(linkID)
		if len(att) != 1 || att[0].Error == "" {
			t.Fatalf("attempt = %s, want a network error", mustJSON(t, att))
		}
		for _, word := range strings.Fields("SSH-2.0-OpenSSH_9.6 internal banner") {
			if strings.Contains(att[0].Error, word) {
				t.Errorf("attempt = %s, shows %q of what the host sent", mustJSON(t, att), word)
			}
		}
	})
	t.Run("a name that does not resolve", func(t *testing.T) {
		t.Parallel()
		linkID, eventID := b.finish("http://nowhere.example.com/hook")
		b.waitStatus(eventID, linkflow.DeliveryFailed, 10*time.Second)
		if att := b.attempts(linkID); len(att) != 1 || att[0].Error != "DNS lookup failed: no such host" {
			t.Errorf("attempt = %s, want the DNS failure without the resolver", mustJSON(t, att))
		}
	})
}

// An allowlisted host name alone does not let a webhook reach a non-public
// address: no CIDR of the allowlist covers it.
func TestSSRFGuardNameAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	_, port, _ := net.SplitHostPort(rc.srv.Listener.Addr().String())
	cfg := b.config()
	cfg.AllowPrivate = false
	cfg.Schedule = []time.Duration{0}
	cfg.Resolver = fakeResolver{"hooks.allowed.test": {netip.MustParseAddr("127.0.0.1")}}
	cfg.Allowlist = []string{"hooks.allowed.test"}
	b.dispatcher(cfg)
	linkID, eventID := b.finish("http://hooks.allowed.test:" + port + "/hook")
	b.waitStatus(eventID, linkflow.DeliveryFailed, 10*time.Second)
	if att := b.attempts(linkID); len(att) != 1 || !strings.Contains(att[0].Error, "loopback") {
		t.Errorf("attempt = %s, want refused as loopback", mustJSON(t, att))
	}
	if rc.count(eventID) != 0 {
		t.Errorf("the refused target received the webhook")
	}
}

func counterValue(t testing.TB, b *testBundle, name, label string) float64 {
	t.Helper()
	mfs, err := b.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabel(m, label) {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// histogramCount is how many observations histogram name holds.
func histogramCount(t testing.TB, b *testBundle, name string) uint64 {
	t.Helper()
	mfs, err := b.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetValue() == value {
			return true
		}
	}
	return false
}

// A redelivery that lands while a dispatcher finishes the same delivery is
// not lost: the dispatcher's schedule changes, made with its recording,
// respect it.
func TestRedeliveryRacingTheDispatcher(t *testing.T) {
	t.Parallel()
	b := setup(t)
	linkID, eventID := b.finish("http://receiver.example.com/hook")
	now := time.Now()
	claim := now.Add(time.Minute)
	acc, err := b.store.AcceptEvent(b.ctx, linkflow.EventAccept{OrgID: b.org, EventID: eventID,
		Now: now, FirstAt: now, ClaimUntil: claim})
	if err != nil || !acc.Created || !acc.Owned {
		t.Fatal(acc, err)
	}
	record := func(version int64, status string, next time.Time) error {
		t.Helper()
		_, err := b.store.RecordAttempt(b.ctx, linkflow.AttemptRecord{OrgID: b.org, EventID: eventID, LinkID: linkID,
			Version: version, At: time.Now(), Entry: []byte(linkflow.AttemptEntryPrefix + `"x":1}`), StatusCode: 500,
			Status: status, Step: 1, NextAt: next, Trigger: linkflow.TriggerRetry, FailedRetention: time.Hour,
			Claim: claim, Now: time.Now()})
		return err
	}
	score := func() time.Time {
		t.Helper()
		at, ok := b.scheduledAt(eventID)
		if !ok {
			t.Fatal("not in the retry schedule")
		}
		return at
	}

	// The dispatcher decides "retry in an hour" while a redelivery comes in:
	// its late recording must not push the redelivery back.
	if _, err := b.svc.Redeliver(b.ctx, b.org, linkID); err != nil {
		t.Fatal(err)
	}
	if err := record(acc.Delivery.Version, linkflow.DeliveryPending, now.Add(time.Hour)); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("record = %v, want fenced", err)
	}
	if due := score(); due.After(time.Now()) {
		t.Fatalf("redelivery pushed back to %s", due)
	}

	// The dispatcher (claiming the redelivery) decides "failed" and takes
	// the delivery out of the schedule; a replay right after must not be
	// dropped.
	refs, _, err := b.store.ClaimDueDeliveries(b.ctx, time.Now(), 10, time.Minute)
	if err != nil || len(refs) != 1 {
		t.Fatal(refs, err)
	}
	claim = time.UnixMilli(score().UnixMilli())
	cur := b.delivery(eventID)
	if err := record(cur.Version, linkflow.DeliveryFailed, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if b.scheduled(eventID) {
		t.Fatal("a failed delivery is still scheduled")
	}
	if res, err := b.svc.ReplayFailed(b.ctx, b.org, webhooks.ReplayFilter{}); err != nil || res.Replayed != 1 {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	if due := score(); due.After(time.Now()) {
		t.Fatalf("replay scheduled at %s", due)
	}
	if d := b.delivery(eventID); d.Status != linkflow.DeliveryPending || !d.Once || d.Trigger != linkflow.TriggerReplay {
		t.Errorf("state after replay: %+v", d)
	}
}

// A host that keeps failing opens its breaker, and deferrals use up no
// attempt; but a delivery the breaker holds back longer than BreakerGiveUp
// fails (replayable), rather than waiting until its state expires.
func TestBreakerGivesUpOnADeadHost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.Schedule = []time.Duration{0, 20 * time.Millisecond, time.Hour}
	cfg.BreakerThreshold, cfg.BreakerCooldown, cfg.BreakerGiveUp = 1, time.Hour, 300*time.Millisecond
	b.dispatcher(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/hook"
	_ = ln.Close() // connections refused from now on
	linkID, eventID := b.finish(dead)
	d := b.waitStatus(eventID, linkflow.DeliveryFailed, 20*time.Second)
	if d.Attempts != 2 || d.LastStatusCode != 0 || !strings.Contains(d.LastError, "circuit breaker") {
		t.Fatalf("delivery %+v, want one attempt sent, then one recorded unsent for the breaker", d)
	}
	if att := b.attempts(linkID); len(att) != 2 || att[1].StatusCode != nil || att[1].Outcome != linkflow.DeliveryFailed {
		t.Fatalf("attempt log %s", mustJSON(t, att))
	}
}

// A delivery whose organization's signing secret cannot be read (sealed
// with a key the dispatcher is no longer given) is not tried every second
// for good: past BreakerGiveUp it fails, unsent and replayable.
func TestUnreadableSecretFailsTheDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	kr, err := store.ParseKeyring(store.GenerateKey("another1"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.New(store.Config{Redis: b.rdb, Keyring: kr, Prefix: b.prefix, FullDuplex: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := b.config()
	cfg.Store, cfg.BreakerGiveUp, cfg.HostRetryDelay = other, 300*time.Millisecond, 50*time.Millisecond
	b.dispatcher(cfg)
	rc := newReceiver(t, answer(http.StatusOK))
	linkID, eventID := b.finish(rc.url())
	d := b.waitStatus(eventID, linkflow.DeliveryFailed, 20*time.Second)
	if d.Attempts != 1 || d.LastStatusCode != 0 || !strings.Contains(d.LastError, "signing secret") || rc.count(eventID) != 0 {
		t.Fatalf("delivery %+v (%d requests), want one attempt recorded unsent for the secret", d, rc.count(eventID))
	}
	if att := b.attempts(linkID); len(att) != 1 || att[0].StatusCode != nil || att[0].Outcome != linkflow.DeliveryFailed {
		t.Fatalf("attempt log %s", mustJSON(t, att))
	}
}

// An attempt whose wait for a busy host used up its claim hands the delivery
// back rather than sending it while another dispatcher may claim it too; it
// is then sent on a fresh claim.
func TestAttemptHandsBackAShortClaim(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	// An attempt needs Timeout and half a second of its claim (the slack is
	// a quarter of Visibility - Timeout): a claim of 22s has 1.5s to spare.
	cfg.Timeout, cfg.Visibility = 20*time.Second, 22*time.Second
	cfg.PerHostConcurrency, cfg.HostQueueWait = 1, 15*time.Second
	cfg.Schedule = []time.Duration{0, time.Hour}
	b.dispatcher(cfg)
	hang := make(chan struct{})
	var first atomic.Bool
	var arrived atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		if first.CompareAndSwap(false, true) {
			<-hang // the first attempt holds the host's one slot until released
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	release := func() { once.Do(func() { close(hang) }) }
	t.Cleanup(release) // before srv.Close, which waits for the handler
	_, holder := b.finish(srv.URL + "/hook")
	testenv.Eventually(t, 10*time.Second, "the first delivery holds the host", func() bool { return arrived.Load() == 1 })
	_, queued := b.finish(srv.URL + "/hook")
	ref := linkflow.DeliveryRef{OrgID: b.org, EventID: queued}
	// The second waits for the host until less than an attempt's need is
	// left of its claim; then the host frees up.
	testenv.Eventually(t, 15*time.Second, "the queued delivery's claim to run short", func() bool {
		at, err := b.store.ScheduledAt(b.ctx, ref)
		return err == nil && time.Until(at) < 20*time.Second
	})
	release()
	b.waitStatus(holder, linkflow.DeliverySucceeded, 10*time.Second)
	b.waitStatus(queued, linkflow.DeliverySucceeded, 20*time.Second)
	if n := counterValue(t, b, "linkflow_webhook_deferred_total", "claim_short"); n < 1 {
		t.Fatalf("claim_short deferrals %v: the delivery was sent on a claim about to expire", n)
	}
}

// Tenants whose endpoints share a host do not hold each other back: one
// organization's endpoint that fails (opening its breaker for an hour) and
// another's that hangs (holding its only slot) leave a third organization's
// webhooks to the same host going out at once.
func TestTenantsOnOneHostIsolated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config()
	cfg.PerHostConcurrency = 1
	cfg.BreakerThreshold = 1
	cfg.BreakerCooldown = time.Hour
	cfg.Timeout = time.Minute
	cfg.Visibility = 2 * time.Minute
	cfg.ShutdownGrace = 5 * time.Second
	b.dispatcher(cfg)

	release := make(chan struct{})
	var hanging atomic.Int32
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) int {
		switch r.URL.Path {
		case "/fails":
			w.WriteHeader(http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable
		case "/hangs":
			hanging.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	})
	t.Cleanup(func() { close(release) }) // before the receiver and the dispatcher stop
	org := func(name string) string {
		o, err := b.store.CreateOrg(b.ctx, "", name, "")
		if err != nil {
			t.Fatal(err)
		}
		return o.ID
	}
	failing, slow, healthy := b.org, org("Hangs"), org("Healthy")

	_, failed := b.finishFor(failing, rc.srv.URL+"/fails")
	testenv.Eventually(t, 10*time.Second, "the failing tenant's attempt (its breaker opens before it is recorded)", func() bool {
		d := b.delivery(failed)
		return d != nil && d.Attempts == 1
	})
	b.finishFor(slow, rc.srv.URL+"/hangs")
	testenv.Eventually(t, 10*time.Second, "the slow tenant's request to hang", func() bool { return hanging.Load() == 1 })
	for range 3 {
		_, id := b.finishFor(healthy, rc.srv.URL+"/ok")
		testenv.Eventually(t, 10*time.Second, "the healthy tenant's webhook", func() bool { return rc.count(id) == 1 })
	}
}
