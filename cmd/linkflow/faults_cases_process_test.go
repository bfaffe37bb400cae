package main

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/testenv"
)

// Issue 14: Redis stops (cleanly: its append-only file is written out) for
// 10 s under a load of links created and claimed through the API, and
// starts again on the same port and data. While it is down the customer
// API, the end user's endpoints and the hosted page answer 503
// SERVICE_UNAVAILABLE with Retry-After within 3 s (never 500, never a
// hang), and every /readyz names Redis; the worker and the dispatcher wait
// and carry on by themselves; every link succeeds with its webhook, and no
// provider write runs twice.
func TestFaultRedisDownUnderLoad(t *testing.T) {
	t.Parallel()
	const accounts = 50
	outage := cmp.Or(*faultOutageFlag, 10*time.Second)
	f := newFaultFleet(t)
	// A provider latency keeps sessions in flight when Redis goes.
	api, worker, disp := f.api(), f.worker("worker", "--sandbox-latency", "200ms"), f.dispatcher("dispatcher")
	probe := f.sampleLink()

	n := faultLinks(300)
	res, done := f.load(n, accounts, float64(n)/9)
	testenv.Eventually(t, 60*time.Second, "a third of the links claimed", func() bool { return int(res.claimed.Load()) >= n/3 })
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { f.sample(stopSampling, 200*time.Millisecond, probe); close(sampled) }()

	before := res.links()
	t.Logf("redis stops after %d claims", len(before))
	down, restart, up := f.outage("redis", outage, f.redis.Stop, f.startRedis, api, worker, disp)
	t.Logf("redis was down %s; started again in %s, the fleet was ready %s after", restart.Sub(down).Round(time.Millisecond),
		up.Sub(restart).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	ended, delivered := f.waitEnded(before, 2*time.Minute)
	t.Logf("the %d links claimed before the outage ended %s after redis was back, their webhooks were delivered %s after",
		len(before), ended.Sub(up).Round(100*time.Millisecond), delivered.Sub(up).Round(100*time.Millisecond))
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the load did not finish: %d of %d claimed", res.claimed.Load(), n)
	}
	close(stopSampling)
	<-sampled

	o := f.settle(res.links(), accounts, 2*time.Minute)
	t.Logf("%s; the load met %d 503s and retried them", o, res.refused.Load())
	during := f.between(down, restart)
	t.Logf("while redis was down: %s", latencies(during))
	refused := 0
	for _, a := range during {
		if a.status != http.StatusServiceUnavailable || a.retryAfter == "" || a.took > 3*time.Second ||
			(a.what != "hosted" && a.code != "SERVICE_UNAVAILABLE") {
			t.Errorf("while redis was down, %s: %d %s Retry-After %q after %s: %.200s", a.what, a.status, a.code,
				a.retryAfter, a.took.Round(time.Millisecond), a.body)
			continue
		}
		refused++
	}
	if refused < 10 {
		t.Errorf("only %d answers while redis was down", refused)
	}
	f.checkAnswers(10 * time.Second)
	o.check(t)
}

// Issue 14: the NATS server stops for a few seconds under load and starts
// again on the same port and JetStream directory. A claim meanwhile is
// accepted (its message waits in the outbox and is published once NATS is
// back) or refused with 503; every accepted claim's link succeeds with its
// webhook, and no provider write runs twice.
func TestFaultNATSRestartUnderLoad(t *testing.T) {
	t.Parallel()
	const outage, accounts = 5 * time.Second, 50
	f := newFaultFleet(t)
	api, worker, disp := f.api(), f.worker("worker"), f.dispatcher("dispatcher")

	n := faultLinks(300)
	res, done := f.load(n, accounts, float64(n)/9)
	testenv.Eventually(t, 60*time.Second, "a third of the links claimed", func() bool { return int(res.claimed.Load()) >= n/3 })
	t.Logf("nats stops after %d claims", res.claimed.Load())
	down, restart, up := f.outage("nats", outage, f.stopNATS, f.startNATS, api, worker, disp)
	t.Logf("nats was down %s; the fleet was ready %s after it started again", restart.Sub(down).Round(time.Millisecond),
		time.Since(up).Round(time.Millisecond))
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the load did not finish: %d of %d claimed", res.claimed.Load(), n)
	}

	o := f.settle(res.links(), accounts, 2*time.Minute)
	t.Logf("%s; the load met %d 503s and retried them", o, res.refused.Load())
	var claims []answer
	for _, a := range f.sent(down, restart) {
		if a.what == "claim" {
			claims = append(claims, a)
		}
	}
	t.Logf("claims sent while nats was down: %s", latencies(claims))
	if len(claims) < 10 {
		t.Errorf("only %d claims while nats was down: the outage was not under load", len(claims))
	}
	for _, a := range claims {
		if a.status != http.StatusAccepted && a.status != http.StatusServiceUnavailable {
			t.Errorf("a claim while nats was down: %d %s", a.status, a.body)
		}
	}
	f.checkAnswers(10 * time.Second)
	o.check(t)
}

// Issue 14: while links are created through the API, the worker and the
// dispatcher are killed (SIGKILL) every few seconds and started again.
// Every link ends, every webhook is delivered once or more under one
// webhook-id, and no provider write runs twice. The test prints what was
// lost, duplicated and delivered.
func TestFaultRepeatedKills(t *testing.T) {
	t.Parallel()
	const accounts, every = 50, 1500 * time.Millisecond
	f := newFaultFleet(t)
	f.hooks.mu.Lock()
	f.hooks.delay = 20 * time.Millisecond // deliveries in flight when the dispatcher dies
	f.hooks.mu.Unlock()
	f.api()
	// Short leases and ack deadlines: a killed worker's links come back
	// in seconds. A provider latency keeps sessions in flight to be killed.
	wargs := []string{"--ack-wait", "2s", "--lease-ttl", "2s", "--sandbox-latency", "30ms"}
	dargs := []string{"--webhook-timeout", "1s", "--webhook-visibility", "2s"}
	worker, disp := f.worker("worker-0", wargs...), f.dispatcher("dispatcher-0", dargs...)

	n := faultLinks(500)
	start := time.Now()
	res, done := f.load(n, accounts, min(float64(n)/12, 50))
	kills := map[string]int{}
	tick := time.NewTicker(every)
	for loading := true; loading; {
		select {
		case <-done:
			loading = false
		case <-tick.C:
			// In turns: the worker, then the dispatcher.
			if kills["worker"] <= kills["dispatcher"] {
				worker.kill()
				kills["worker"]++
				worker = f.worker(fmt.Sprintf("worker-%d", kills["worker"]), wargs...)
			} else {
				disp.kill()
				kills["dispatcher"]++
				disp = f.dispatcher(fmt.Sprintf("dispatcher-%d", kills["dispatcher"]), dargs...)
			}
		}
	}
	tick.Stop()
	loaded := time.Since(start)
	o := f.settle(res.links(), accounts, 3*time.Minute)
	t.Logf("%d links created and claimed in %s while the worker was killed %d times and the dispatcher %d times; "+
		"all ended and delivered %s after the load", n, loaded.Round(time.Millisecond), kills["worker"], kills["dispatcher"],
		(time.Since(start) - loaded).Round(time.Millisecond))
	t.Logf("%s", o)
	if kills["worker"] == 0 || kills["dispatcher"] == 0 {
		t.Errorf("kills %v: the load ended before both were killed", kills)
	}
	f.checkAnswers(10 * time.Second)
	o.check(t)
}

// Issue 14: an api, a worker and a dispatcher launched before a single
// Redis and a single NATS server exist (TestClusterFleetStartsBeforeItsServers
// does it with clusters) wait for them, saying on /readyz what they wait
// for, and are ready within a minute of the servers starting, then run a
// link end to end.
func TestFaultFleetStartsBeforeItsServers(t *testing.T) {
	t.Parallel()
	f := plannedFaultFleet(t)
	procs := []*proc{f.launchAPI(), f.launchWorker("worker"), f.launchDispatcher("dispatcher")}
	for _, p := range procs {
		testenv.Eventually(t, 20*time.Second, p.name+"'s /readyz to name Redis and NATS", func() bool {
			waitAlive(t, p)
			code, body := p.get("/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(body, "redis: waiting") &&
				strings.Contains(body, "nats: waiting")
		})
	}
	// Long enough for their retries to back off to the longest pause.
	time.Sleep(6 * time.Second) // how long the servers stay away, not a wait for an event
	waitAlive(t, procs...)

	start := time.Now()
	f.startRedis()
	f.startNATS()
	t.Logf("servers started in %s", time.Since(start).Round(time.Millisecond))
	for _, p := range procs {
		p.waitReady(time.Minute - time.Since(start))
	}
	t.Logf("the fleet was ready %s after the servers started", time.Since(start).Round(time.Millisecond))

	f.setUp()
	res, done := f.load(1, 1, 10)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("one link's load did not finish: %d claimed, %d refused", res.claimed.Load(), res.refused.Load())
	}
	o := f.settle(res.links(), 1, 30*time.Second)
	t.Logf("%s, %s after the servers started", o, time.Since(start).Round(time.Millisecond))
	o.check(t)
}
