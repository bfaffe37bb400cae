package webhooks

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/testenv"
)

type awaited struct{ ok, inQueue bool }

// startAwait runs await in the background; queued counts its calls.
func startAwait(g *hostGate, host string, queued *atomic.Int32, stop chan struct{}) <-chan awaited {
	out := make(chan awaited, 1)
	go func() {
		ok, in := g.await(host, func() { queued.Add(1) }, stop)
		out <- awaited{ok, in}
	}()
	return out
}

func (g *hostGate) queueLen(host string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if h := g.hosts[host]; h != nil {
		return len(h.queue)
	}
	return 0
}

func receive(t *testing.T, ch <-chan awaited, what string) awaited {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: await did not return", what)
		return awaited{}
	}
}

// A waiter behind a full queue keeps its caller's global slot (queued is
// not called) until the queue has room, then queues like the others; one
// that finds no room in HostOverflowWait leaves without a slot.
func TestHostGateOverflowWaitsForRoom(t *testing.T) {
	t.Parallel()
	g := newHostGate(&Config{PerHostConcurrency: 1, BreakerThreshold: 3, BreakerCooldown: time.Minute,
		HostRetryDelay: time.Second, HostQueue: 1, HostQueueWait: time.Minute, HostOverflowWait: time.Minute}, nil)
	stop := make(chan struct{})
	defer close(stop)
	if ok, _, _ := g.acquire("a"); !ok {
		t.Fatal("first acquire refused")
	}

	var queuedA, queuedB atomic.Int32
	a := startAwait(g, "a", &queuedA, stop)
	testenv.Eventually(t, 10*time.Second, "the first waiter queued", func() bool { return queuedA.Load() == 1 })
	b := startAwait(g, "a", &queuedB, stop)
	testenv.Eventually(t, 10*time.Second, "the second waiter behind the full queue", func() bool { return g.queueLen("a") == 2 })
	if queuedB.Load() != 0 {
		t.Fatal("a waiter behind a full queue gave up its global slot")
	}

	g.release("a", false, true, false) // to the first waiter; the second enters the queue
	if got := receive(t, a, "first waiter"); !got.ok || !got.inQueue {
		t.Fatalf("first waiter: %+v, want a slot after queueing", got)
	}
	testenv.Eventually(t, 10*time.Second, "the second waiter entering the queue", func() bool { return queuedB.Load() == 1 })
	g.release("a", false, true, false)
	if got := receive(t, b, "second waiter"); !got.ok || !got.inQueue {
		t.Fatalf("second waiter: %+v, want a slot after queueing", got)
	}

	// No room within HostOverflowWait: back without a slot, and out of the
	// queue. The queue's own waiter is unaffected.
	g.overflowWait = 20 * time.Millisecond
	var queuedC, queuedD atomic.Int32
	c := startAwait(g, "a", &queuedC, stop)
	testenv.Eventually(t, 10*time.Second, "a waiter queued", func() bool { return queuedC.Load() == 1 })
	if got := receive(t, startAwait(g, "a", &queuedD, stop), "overflowing waiter"); got.ok || got.inQueue || queuedD.Load() != 0 {
		t.Fatalf("overflowing waiter: %+v, queued %d; want no slot and its global slot kept", got, queuedD.Load())
	}
	if n := g.queueLen("a"); n != 1 {
		t.Fatalf("queue holds %d waiters, want 1", n)
	}
	g.release("a", false, true, false)
	if got := receive(t, c, "queued waiter"); !got.ok {
		t.Fatalf("queued waiter: %+v", got)
	}
	g.release("a", false, true, false)

	// A slot that came free between acquire and await is taken at once.
	var queuedE atomic.Int32
	if got := receive(t, startAwait(g, "a", &queuedE, stop), "free host"); !got.ok || got.inQueue || queuedE.Load() != 0 {
		t.Fatalf("free host: %+v, queued %d", got, queuedE.Load())
	}
	g.release("a", false, true, false)
	if len(g.hosts) != 0 {
		t.Errorf("idle healthy hosts kept: %d", len(g.hosts))
	}
}

// A negative HostQueue queues nobody: every waiter waits as overflow, and a
// release hands the slot to the first of them.
func TestHostGateWithoutQueue(t *testing.T) {
	t.Parallel()
	g := newHostGate(&Config{PerHostConcurrency: 1, BreakerThreshold: 3, BreakerCooldown: time.Minute,
		HostRetryDelay: time.Second, HostQueue: -1, HostQueueWait: time.Minute, HostOverflowWait: time.Minute}, nil)
	stop := make(chan struct{})
	defer close(stop)
	if ok, _, _ := g.acquire("a"); !ok {
		t.Fatal("first acquire refused")
	}
	var queued atomic.Int32
	w := startAwait(g, "a", &queued, stop)
	testenv.Eventually(t, 10*time.Second, "the waiter waiting", func() bool { return g.queueLen("a") == 1 })
	g.release("a", false, true, false)
	if got := receive(t, w, "waiter"); !got.ok || got.inQueue || queued.Load() != 0 {
		t.Fatalf("waiter: %+v, queued %d; want the slot with its global slot kept", got, queued.Load())
	}
	g.release("a", false, true, false)
}

// A host whose attempts failed and that nothing goes to any more (an
// endpoint its tenant abandoned, a made-up name that fails at once) is
// forgotten once idle for the gate's forgetAfter and past any cooldown; a
// host with an attempt in flight, or whose breaker is open, is kept.
func TestHostGateForgetsIdleFailingHosts(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	g := newHostGate(&Config{PerHostConcurrency: 2, BreakerThreshold: 2, BreakerCooldown: 10 * time.Minute,
		HostRetryDelay: time.Second, HostQueue: 1, HostQueueWait: time.Minute, HostOverflowWait: time.Minute}, nil)
	g.now = func() time.Time { return now }
	fail := func(host string) {
		t.Helper()
		if ok, _, _ := g.acquire(host); !ok {
			t.Fatalf("acquire %s refused", host)
		}
		g.release(host, false, false, true)
	}
	known := func(host string) bool { _, ok := g.hosts[host]; return ok }

	fail("failed-once") // one failure: under the threshold
	fail("opened")      // two: the breaker opens for 10 minutes
	fail("opened")      //
	g.acquire("busy")   // in flight throughout
	if !g.open("opened") {
		t.Fatal("breaker not open after two failures")
	}

	now = now.Add(9 * time.Minute)
	g.acquire("other")
	g.release("other", false, true, false)
	for _, h := range []string{"failed-once", "opened", "busy"} {
		if !known(h) {
			t.Fatalf("%s forgotten after 9 minutes (forgetAfter %s)", h, g.forgetAfter)
		}
	}

	now = now.Add(2 * time.Minute)
	g.acquire("other")
	g.release("other", false, true, false)
	if known("failed-once") || known("opened") {
		t.Fatalf("idle failing hosts kept: %d hosts known", len(g.hosts))
	}
	if !known("busy") {
		t.Fatal("a host with an attempt in flight was forgotten")
	}
}

// Only the probe's verdict decides a half-open breaker: an attempt that
// began before the breaker opened and ends while the probe is out neither
// lets a second probe through nor opens the breaker again.
func TestHostGateHalfOpenHearsOnlyItsProbe(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	opened := 0
	g := newHostGate(&Config{PerHostConcurrency: 4, BreakerThreshold: 1, BreakerCooldown: 10 * time.Second,
		HostRetryDelay: time.Second, HostQueue: 1, HostQueueWait: time.Minute, HostOverflowWait: time.Minute},
		func(string, bool) { opened++ })
	g.now = func() time.Time { return now }
	for range 3 { // two attempts outlive the opening, one opens it
		if ok, _, _ := g.acquire("h"); !ok {
			t.Fatal("acquire refused")
		}
	}
	g.release("h", false, false, true) // opens the breaker
	now = now.Add(10 * time.Second)
	if ok, _, reason := g.acquire("h"); !ok || reason != grantProbe {
		t.Fatalf("no probe after the cooldown: %v %s", ok, reason)
	}
	if ok, _, _ := g.acquire("h"); ok {
		t.Fatal("a second probe went while the first is out")
	}
	g.release("h", false, true, false) // an old attempt answers well meanwhile
	if g.hosts["h"].openUntil.IsZero() {
		t.Fatal("an attempt from before the breaker opened closed it")
	}
	g.release("h", false, false, true) // another old one fails meanwhile
	if opened != 1 {
		t.Fatalf("the old attempt's failure opened the breaker again (%d opens)", opened)
	}
	if ok, _, reason := g.acquire("h"); ok || reason != deferBreakerOpen {
		t.Fatalf("a second probe went while the first is out: %v %s", ok, reason)
	}
	g.release("h", true, false, true) // the probe fails: open again
	if opened != 2 || !g.open("h") {
		t.Fatalf("the failed probe did not open the breaker again (%d opens)", opened)
	}
}
