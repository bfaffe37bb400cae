package webhooks

import (
	"sync"
	"time"
)

// hostGate isolates target hosts from each other in this process: it bounds
// the attempts in flight to each host and keeps a circuit breaker per host.
// acquire never blocks: a delivery that cannot go now is told how long to
// wait. A delivery for a busy but healthy host may queue for the host's next
// free slot (await), holding no global slot meanwhile; past a bounded queue
// or wait it goes back to the schedule. Either way one slow or dead receiver
// holds at most its own slots.
type hostGate struct {
	perHost   int
	threshold int
	cooldown  time.Duration
	busyDelay time.Duration
	now       func() time.Time
	onOpen    func(host string, reopened bool)

	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	inFlight  int
	failures  int       // consecutive
	openUntil time.Time // zero: closed
	probing   bool      // half-open: one probe is in flight
	queue     []*hostWaiter
}

// hostWaiter is a delivery queued for a host's next free slot. A release
// hands its slot straight to the first waiter (granted) instead of freeing
// it; an opening breaker sends every waiter away.
type hostWaiter struct {
	done    chan struct{}
	granted bool
}

func newHostGate(c *Config, onOpen func(host string, reopened bool)) *hostGate {
	return &hostGate{perHost: c.PerHostConcurrency, threshold: c.BreakerThreshold, cooldown: c.BreakerCooldown,
		busyDelay: c.HostRetryDelay, now: time.Now, onOpen: onOpen, hosts: map[string]*hostState{}}
}

// Deferral reasons.
const (
	deferHostBusy    = "host_busy"
	deferBreakerOpen = "breaker_open"
)

// acquire takes a slot for host. When it cannot, it returns how long to wait
// and why.
func (g *hostGate) acquire(host string) (ok bool, wait time.Duration, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hosts[host]
	if h == nil {
		h = &hostState{}
		g.hosts[host] = h
	}
	now := g.now()
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
		return true, 0, ""
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
func (g *hostGate) release(host string, healthy, failed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hosts[host]
	if h == nil {
		return
	}
	wasProbe := h.probing && !h.openUntil.IsZero()
	if wasProbe {
		h.probing = false
	}
	switch {
	case healthy:
		h.failures, h.openUntil = 0, time.Time{}
	case failed:
		h.failures++
		if wasProbe || (h.openUntil.IsZero() && h.failures >= g.threshold) {
			h.openUntil = g.now().Add(g.cooldown)
			if g.onOpen != nil {
				g.onOpen(host, wasProbe)
			}
		}
	case wasProbe:
		// An inconclusive probe: let the next one decide.
	}
	switch {
	case len(h.queue) > 0 && h.openUntil.IsZero():
		// The slot passes to the first waiter; inFlight stays.
		w := h.queue[0]
		h.queue = h.queue[1:]
		w.granted = true
		close(w.done)
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

// await queues for host's next free slot, for at most maxWait, behind at
// most maxQueue others. It reports whether it got one (then the caller must
// release it); stop ends the wait early.
func (g *hostGate) await(host string, maxQueue int, maxWait time.Duration, stop <-chan struct{}) bool {
	g.mu.Lock()
	h := g.hosts[host]
	if h == nil || len(h.queue) >= maxQueue || !h.openUntil.IsZero() {
		g.mu.Unlock()
		return false
	}
	w := &hostWaiter{done: make(chan struct{})}
	h.queue = append(h.queue, w)
	g.mu.Unlock()

	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	select {
	case <-w.done:
	case <-timer.C:
	case <-stop:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		return true
	}
	for i, q := range h.queue {
		if q == w {
			h.queue = append(h.queue[:i], h.queue[i+1:]...)
			break
		}
	}
	return false
}

// open reports whether host's breaker is open (tests, metrics).
func (g *hostGate) open(host string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hosts[host]
	return h != nil && !h.openUntil.IsZero() && g.now().Before(h.openUntil)
}
