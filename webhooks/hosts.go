package webhooks

import (
	"strings"
	"sync"
	"time"
)

// hostGate isolates target hosts from each other in this process: it bounds
// the attempts in flight to each host and keeps a circuit breaker per host.
// A "host" here is one organization's part of a target host (gateKey), so
// tenants sharing a receiver's host are isolated from each other too.
// acquire never blocks: a delivery that cannot go now is told how long to
// wait. A delivery for a busy but healthy host may queue for the host's next
// free slot (await), holding no global slot meanwhile; behind a full queue it
// waits a moment for room holding its global slot, and past that or the
// queue's own bounded wait it goes back to the schedule. Either way one slow
// or dead receiver holds at most its own slots.
type hostGate struct {
	perHost   int
	threshold int
	cooldown  time.Duration
	busyDelay time.Duration
	// maxQueue, queueWait and overflowWait are Config.HostQueue,
	// HostQueueWait and HostOverflowWait.
	maxQueue     int
	queueWait    time.Duration
	overflowWait time.Duration
	// forgetAfter is how long an idle host's state is kept (forget).
	forgetAfter time.Duration
	now         func() time.Time
	onOpen      func(host string, reopened bool)

	mu         sync.Mutex
	hosts      map[string]*hostState
	nextForget time.Time
}

// hostForgetAfter is the least time a host's failures and breaker are kept
// after the last attempt to it; a gate keeps them at least its cooldown.
const hostForgetAfter = 5 * time.Minute

// gateKey is the gate's name for org's deliveries to host.
func gateKey(org, host string) string { return org + " " + host }

// splitGateKey is gateKey's parts.
func splitGateKey(key string) (org, host string) {
	org, host, _ = strings.Cut(key, " ")
	return org, host
}

type hostState struct {
	inFlight  int
	failures  int       // consecutive
	openUntil time.Time // zero: closed
	probing   bool      // half-open: one probe is in flight
	queue     []*hostWaiter
	lastUsed  time.Time // the latest acquire or release
}

// hostWaiter is a delivery queued for a host's next free slot. A release
// hands its slot straight to the first waiter (granted) instead of freeing
// it; an opening breaker sends every waiter away.
type hostWaiter struct {
	done    chan struct{}
	granted bool
	inQueue bool          // within the first maxQueue waiters
	entered chan struct{} // closed when a waiter behind a full queue enters it
}

func newHostGate(c *Config, onOpen func(host string, reopened bool)) *hostGate {
	return &hostGate{perHost: c.PerHostConcurrency, threshold: c.BreakerThreshold, cooldown: c.BreakerCooldown,
		busyDelay: c.HostRetryDelay, maxQueue: c.HostQueue, queueWait: c.HostQueueWait, overflowWait: c.HostOverflowWait,
		forgetAfter: max(c.BreakerCooldown, hostForgetAfter),
		now:         time.Now, onOpen: onOpen, hosts: map[string]*hostState{}}
}

// Deferral reasons.
const (
	deferHostBusy    = "host_busy"
	deferBreakerOpen = "breaker_open"
	// deferClaimShort: the wait for the host left too little of the claim
	// for an attempt (Visibility is tight for the host waits).
	deferClaimShort = "claim_short"
	// grantProbe is acquire's reason when it grants a half-open breaker's
	// probe: its release says so, and decides the breaker.
	grantProbe = "probe"
)

// acquire takes a slot for host. When it cannot, it returns how long to wait
// and why; a slot that is a half-open breaker's probe comes with grantProbe.
func (g *hostGate) acquire(host string) (ok bool, wait time.Duration, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.forget(now)
	h := g.hosts[host]
	if h == nil {
		h = &hostState{}
		g.hosts[host] = h
	}
	h.lastUsed = now
	if !h.openUntil.IsZero() {
		if now.Before(h.openUntil) {
			return false, h.openUntil.Sub(now), deferBreakerOpen
		}
		// Half-open: one probe decides.
		if h.probing {
			return false, g.cooldown / 4, deferBreakerOpen
		}
		h.probing = true
		h.inFlight++
		return true, 0, grantProbe
	}
	if h.inFlight >= g.perHost {
		return false, g.busyDelay, deferHostBusy
	}
	h.inFlight++
	return true, 0, ""
}

// release gives a slot back with the attempt's verdict on the host's health:
// failed counts towards opening the breaker, healthy closes it, neither
// (e.g. a 4xx, a refused address, a canceled attempt) leaves it as it is.
// probe says the slot was the probe acquire granted: only its verdict opens a
// half-open breaker again (an attempt that began before the breaker opened
// may end while the probe is out).
func (g *hostGate) release(host string, probe, healthy, failed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hosts[host]
	if h == nil {
		return
	}
	h.lastUsed = g.now()
	// acquire set probing with the probe; nothing else clears it.
	if probe {
		h.probing = false
	}
	switch {
	case healthy && (probe || h.openUntil.IsZero()):
		// An attempt that began before the breaker opened does not close
		// it: its probe decides.
		h.failures, h.openUntil = 0, time.Time{}
	case failed:
		h.failures++
		if probe || (h.openUntil.IsZero() && h.failures >= g.threshold) {
			h.openUntil = g.now().Add(g.cooldown)
			if g.onOpen != nil {
				g.onOpen(host, probe)
			}
		}
	case probe:
		// An inconclusive probe: let the next one decide.
	}
	switch {
	case len(h.queue) > 0 && h.openUntil.IsZero():
		// The slot passes to the first waiter; inFlight stays.
		w := h.queue[0]
		h.queue = h.queue[1:]
		w.granted = true
		close(w.done)
		g.admit(h)
	default:
		h.inFlight--
		if !h.openUntil.IsZero() {
			for _, w := range h.queue {
				close(w.done)
			}
			h.queue = nil
		}
	}
	if h.inFlight == 0 && h.failures == 0 && h.openUntil.IsZero() && len(h.queue) == 0 {
		delete(g.hosts, host)
	}
}

// forget drops, at most once a minute, the state of hosts nothing has gone to
// for forgetAfter: nothing in flight or queued, any breaker's cooldown over.
// A host that keeps failing stays known while deliveries keep coming; one
// that failed and was then left (an endpoint a tenant abandoned, a made-up
// name that fails at once) would otherwise be kept for the process's life.
func (g *hostGate) forget(now time.Time) {
	if now.Before(g.nextForget) {
		return
	}
	g.nextForget = now.Add(time.Minute)
	for key, h := range g.hosts {
		if h.inFlight == 0 && len(h.queue) == 0 && now.Sub(h.lastUsed) >= g.forgetAfter &&
			(h.openUntil.IsZero() || !now.Before(h.openUntil)) {
			delete(g.hosts, key)
		}
	}
}

// await queues for host's next free slot and reports whether it got one
// (then the caller must release it). The first HostQueue waiters are in the
// queue proper: a waiter calls queued (which gives up the caller's global
// slot) as it enters, then waits at most HostQueueWait. A waiter behind a
// full queue keeps the caller's global slot and waits at most
// HostOverflowWait for room: that paces the caller to a host that drains
// quickly, instead of sending every delivery beyond the queue back to the
// schedule, while a slow host's overflow still goes back within that bound.
// inQueue reports whether queued was called; stop ends the wait early.
func (g *hostGate) await(host string, queued func(), stop <-chan struct{}) (ok, inQueue bool) {
	g.mu.Lock()
	h := g.hosts[host]
	if h == nil {
		h = &hostState{}
		g.hosts[host] = h
	}
	if !h.openUntil.IsZero() {
		g.mu.Unlock()
		return false, false
	}
	if h.inFlight < g.perHost && len(h.queue) == 0 {
		// A slot came free since acquire.
		h.inFlight++
		g.mu.Unlock()
		return true, false
	}
	w := &hostWaiter{done: make(chan struct{}), entered: make(chan struct{})}
	w.inQueue = len(h.queue) < g.maxQueue
	entered := w.inQueue // w.inQueue is the gate's to change, under its lock
	h.queue = append(h.queue, w)
	g.mu.Unlock()

	if !entered {
		timer := time.NewTimer(g.overflowWait)
		defer timer.Stop()
		select {
		case <-w.entered:
		case <-w.done:
			return g.leave(h, w), false
		case <-timer.C:
			return g.leave(h, w), false
		case <-stop:
			return g.leave(h, w), false
		}
	}
	queued()
	timer := time.NewTimer(g.queueWait)
	defer timer.Stop()
	select {
	case <-w.done:
	case <-timer.C:
	case <-stop:
	}
	return g.leave(h, w), true
}

// leave ends w's wait: true when it was granted a slot, else it leaves the
// queue, letting the first waiter behind a full queue in.
func (g *hostGate) leave(h *hostState, w *hostWaiter) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		return true
	}
	for i, q := range h.queue {
		if q == w {
			h.queue = append(h.queue[:i], h.queue[i+1:]...)
			g.admit(h)
			break
		}
	}
	return false
}

// admit lets the first waiter behind a full queue into it once the queue
// has room (one waiter at most: it is called after each departure).
func (g *hostGate) admit(h *hostState) {
	if g.maxQueue < 1 || len(h.queue) < g.maxQueue {
		return
	}
	if w := h.queue[g.maxQueue-1]; !w.inQueue {
		w.inQueue = true
		close(w.entered)
	}
}

// open reports whether host's breaker is open (tests, metrics).
func (g *hostGate) open(host string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hosts[host]
	return h != nil && !h.openUntil.IsZero() && g.now().Before(h.openUntil)
}
