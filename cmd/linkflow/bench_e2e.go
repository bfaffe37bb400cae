package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/webhooks/verify"
)

// receiver is bench's webhook receiver: it verifies every signature and
// notes when each link's webhook arrived.
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

func (r *receiver) at(linkID string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.arrived[linkID]
	return t, ok
}

func (r *receiver) stagesOf(linkID string) ([3]int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.stages[linkID]
	return st, ok
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.arrived)
}

func (r *receiver) close() { _ = r.srv.Close() }

// linkTimes are the moments of one link's life bench saw.
type linkTimes struct {
	id                      string
	start, created, claimed time.Time
	err                     string
}

// operationsFor returns n read operations of the integration, cycling
// through its readable resources.
func operationsFor(integration string, n int) []map[string]string {
	var reads []string
	for _, in := range sandbox.Catalog() {
		if in.ID != integration {
			continue
		}
		for _, res := range in.Resources {
			for _, a := range res.Actions {
				if a.Name == "read" {
					reads = append(reads, res.Name)
				}
			}
		}
	}
	if len(reads) == 0 {
		reads = []string{"paymentMethod"}
	}
	ops := make([]map[string]string, n)
	for i := range ops {
		ops[i] = map[string]string{"resource": reads[i%len(reads)], "action": "read"}
	}
	return ops
}

// benchEndToEnd drives a deployment through its public API only.
func benchEndToEnd(ctx context.Context, f benchFlags) (*report, error) {
	rep := &report{Mode: "end-to-end", Links: f.links, OpsPerLink: f.opsPerLink, Integration: f.integration,
		Errors: map[string]int{}, Latency: map[string]percentiles{}}
	var dep *devDeployment
	if f.embedded {
		var err error
		if dep, err = startDevDeployment(ctx, f); err != nil {
			return nil, err
		}
		defer dep.stop(f.keepDir)
		f.url, f.apiKey, f.webhookSecret = dep.url, dep.apiKey, dep.secret
		rep.Mode = "end-to-end (embedded dev)"
		rep.ProviderLatency = f.latency.String()
	}
	if f.apiKey == "" || f.webhookSecret == "" {
		return nil, errors.New("bench: --api-key and --webhook-secret are required (or use --embedded)")
	}
	rcv, err := startReceiver(f.receiverAddr, f.receiverURL, f.webhookSecret)
	if err != nil {
		return nil, err
	}
	defer rcv.close()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second}}
	body, _ := json.Marshal(map[string]any{"integrationId": f.integration,
		"operations": operationsFor(f.integration, f.opsPerLink), "webhookUrl": rcv.url})

	var mu sync.Mutex
	times := make([]*linkTimes, 0, f.links)
	var started, failed atomic.Int64
	one := func() *linkTimes {
		lt := &linkTimes{start: time.Now()}
		started.Add(1)
		defer func() {
			mu.Lock()
			times = append(times, lt)
			mu.Unlock()
			if lt.err != "" {
				failed.Add(1)
			}
		}()
		var created struct {
			LinkID    string `json:"linkId"`
			ClaimCode string `json:"claimCode"`
		}
		if lt.err = call(ctx, client, "POST", f.url+"/v1/links", f.apiKey, body, &created); lt.err != "" {
			return lt
		}
		lt.id, lt.created = created.LinkID, time.Now()
		claim, _ := json.Marshal(map[string]any{"claimCode": created.ClaimCode,
			"credentials": map[string]string{"username": "bench", "password": "pass_good"}})
		if lt.err = call(ctx, client, "POST", f.url+"/v1/links/"+created.LinkID+"/claim", "", claim, nil); lt.err != "" {
			return lt
		}
		lt.claimed = time.Now()
		return lt
	}

	stop := make(chan struct{})
	go progress(stop, func() string {
		return fmt.Sprintf("bench: %d started, %d webhooks, %d errors", started.Load(), rcv.count(), failed.Load())
	})
	begin := time.Now()
	var profiles = &sync.WaitGroup{}
	var cpu cpuMeter
	if dep != nil {
		profiles = profileChildren(f.profileDir, f.profileSecs, dep.dev)
		cpu.add("dev", dep.dev.cmd.Process.Pid)
		for _, pid := range childPids(dep.dev.cmd.Process.Pid) {
			cpu.add("redis", pid) // dev's only child process
		}
	}
	cpu.add("bench", os.Getpid())
	defer profiles.Wait()
	var wg sync.WaitGroup
	if f.rate > 0 {
		rep.Load = fmt.Sprintf("open loop at %.0f links/s", f.rate)
		interval := time.Duration(float64(time.Second) / f.rate)
		for i := 0; i < f.links && ctx.Err() == nil; i++ {
			// Arrivals follow the schedule, not the responses: a slow system
			// cannot slow the load down and hide its latency.
			next := begin.Add(time.Duration(i) * interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func() { defer wg.Done(); one() }()
		}
	} else {
		rep.Load = fmt.Sprintf("closed loop, %d links in flight", f.concurrency)
		var next atomic.Int64
		for range f.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(f.links) && ctx.Err() == nil {
					lt := one()
					if lt.err == "" {
						select {
						case <-rcv.wait(lt.id):
						case <-ctx.Done():
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	want := f.links - int(failed.Load())
	for rcv.count() < want && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond) // polling bench's own counter
	}
	close(stop)

	var create, claimToHook, createToHook, queued, session, dispatch []time.Duration
	last := begin
	for _, lt := range times {
		if lt.err != "" {
			rep.Errors[lt.err]++
			continue
		}
		create = append(create, lt.created.Sub(lt.start))
		if at, ok := rcv.at(lt.id); ok {
			claimToHook = append(claimToHook, at.Sub(lt.claimed))
			createToHook = append(createToHook, at.Sub(lt.start))
			if st, ok := rcv.stagesOf(lt.id); ok {
				ms := time.Millisecond
				queued = append(queued, time.Duration(st[1]-st[0])*ms)
				session = append(session, time.Duration(st[2]-st[1])*ms)
				dispatch = append(dispatch, at.Sub(time.UnixMilli(st[2])))
			}
			if at.After(last) {
				last = at
			}
			rep.Completed++
		} else {
			rep.Errors["NO_WEBHOOK"]++
		}
	}
	rep.CPU = cpu.stop(rep.Completed)
	rep.DurationSec = last.Sub(begin).Seconds()
	if rep.DurationSec > 0 {
		rep.LinksPerSecond = float64(rep.Completed) / rep.DurationSec
	}
	rep.Latency["create"] = summarize(create)
	rep.Latency["claim->webhook"] = summarize(claimToHook)
	rep.Latency["create->webhook"] = summarize(createToHook)
	// Server-side stages, from the timestamps in the webhook (ms precision):
	// claimed -> started (waiting for a worker), started -> completed (the
	// session and its commit), completed -> webhook received (dispatch).
	rep.Latency["stage claimed->started"] = summarize(queued)
	rep.Latency["stage started->completed"] = summarize(session)
	rep.Latency["stage completed->webhook"] = summarize(dispatch)
	rep.BadSignatures = int(rcv.bad.Load())
	if d := rcv.dupes.Load(); d > 0 {
		rep.Errors["DUPLICATE_WEBHOOK"] = int(d)
	}
	if dep != nil {
		rep.Processes = append(rep.Processes, procStat{Name: "dev", PeakRSSBytes: dep.dev.peakRSS()})
	}
	rep.Processes = append(rep.Processes, procStat{Name: "bench", PeakRSSBytes: procStatus(os.Getpid(), "VmHWM")})
	return rep, nil
}

var benchDebug = os.Getenv("LINKFLOW_BENCH_DEBUG") != ""

// call sends one API request; it returns "" or an error code for the report.
func call(ctx context.Context, c *http.Client, method, url, key string, body []byte, out any) string {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return "REQUEST"
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "TIMEOUT"
		}
		if benchDebug {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		return "NETWORK"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var env struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
			return env.Error.Code
		}
		return fmt.Sprintf("HTTP_%d", resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return "BAD_RESPONSE"
		}
	}
	return ""
}
