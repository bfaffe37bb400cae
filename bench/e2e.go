package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkflow/linkflow/client"
	"github.com/linkflow/linkflow/operations/sandbox"
)

// linkTimes are the moments of one link's life bench saw.
type linkTimes struct {
	id                      string
	start, created, claimed time.Time
	err                     string
}

// readsOf returns the resources of n read operations of the integration,
// cycling through its readable resources.
func readsOf(integration string, n int) []string {
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
	out := make([]string, n)
	for i := range out {
		out[i] = reads[i%len(reads)]
	}
	return out
}

// errorCode is the report's code for a failed call: the API's error code,
// TIMEOUT when bench's own deadline (or a request's) passed, NETWORK for any
// other failure to get an answer.
func errorCode(ctx context.Context, err error) string {
	var apiErr *client.Error
	switch {
	case errors.As(err, &apiErr):
		return cmp.Or(apiErr.Code, fmt.Sprintf("HTTP_%d", apiErr.StatusCode))
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return "TIMEOUT"
	default:
		return "NETWORK"
	}
}

// runEndToEnd drives a deployment through its public API only, with
// linkflow's Go client.
func runEndToEnd(ctx context.Context, cfg Config) (*Report, error) {
	rep := newReport("end-to-end", cfg)
	var dep *devDeployment
	if cfg.Embedded {
		var err error
		if dep, err = startDevDeployment(ctx, cfg); err != nil {
			return nil, err
		}
		defer dep.stop(cfg.Keep)
		cfg.URL, cfg.APIKey, cfg.WebhookSecret = dep.url, dep.apiKey, dep.secret
		rep.Mode = "end-to-end (embedded dev)"
		rep.ProviderLatency = cfg.ProviderLatency.String()
	}
	rcv, err := startReceiver(cfg.ReceiverAddr, cfg.ReceiverURL, cfg.WebhookSecret)
	if err != nil {
		return nil, err
	}
	defer rcv.close()

	// One try per call (a retry would hide the error it retries), over
	// idle pools big enough for every link in flight.
	lf, err := client.New(client.Config{BaseURL: cfg.URL, APIKey: cfg.APIKey, MaxAttempts: 1,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second}}})
	if err != nil {
		return nil, err
	}
	create := client.CreateLinkRequest{IntegrationID: cfg.Integration, WebhookURL: rcv.url}
	for _, res := range readsOf(cfg.Integration, cfg.OpsPerLink) {
		create.Operations = append(create.Operations, client.OperationInput{Resource: res, Action: "read"})
	}
	fail := func(lt *linkTimes, err error) *linkTimes {
		lt.err = errorCode(ctx, err)
		if cfg.Debug && (lt.err == "NETWORK" || lt.err == "TIMEOUT") {
			fmt.Fprintln(cfg.Progress, "bench:", err)
		}
		return lt
	}

	var mu sync.Mutex
	times := make([]*linkTimes, 0, cfg.Links)
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
		created, err := lf.CreateLink(ctx, create)
		if err != nil {
			return fail(lt, err)
		}
		lt.id, lt.created = created.LinkID, time.Now()
		if _, err := lf.ClaimLink(ctx, created.LinkID, client.ClaimRequest{ClaimCode: created.ClaimCode,
			Credentials: client.Credentials{Username: "bench", Password: "pass_good"}}); err != nil {
			return fail(lt, err)
		}
		lt.claimed = time.Now()
		return lt
	}

	stopProgress := progress(cfg.Progress, func() string {
		return fmt.Sprintf("bench: %d started, %d webhooks, %d errors", started.Load(), rcv.count(), failed.Load())
	})
	begin := time.Now()
	profiles := &sync.WaitGroup{}
	var cpu cpuMeter
	if dep != nil {
		profiles = profileChildren(cfg.Progress, cfg.ProfileDir, cfg.ProfileSeconds, dep.dev)
		cpu.add("dev", dep.dev.pid())
		for _, pid := range childPids(dep.dev.pid()) {
			cpu.addWithChildren("redis", pid) // dev's only child process
		}
	}
	cpu.add("bench", os.Getpid())
	defer profiles.Wait()
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		rep.Load = fmt.Sprintf("open loop at %.0f links/s", cfg.Rate)
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		for i := 0; i < cfg.Links && ctx.Err() == nil; i++ {
			// Arrivals follow the schedule, not the responses: a slow system
			// cannot slow the load down and hide its latency.
			if d := time.Until(begin.Add(time.Duration(i) * interval)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					continue
				}
			}
			wg.Go(func() { one() })
		}
	} else {
		rep.Load = fmt.Sprintf("closed loop, %d links in flight", cfg.Concurrency)
		var next atomic.Int64
		for range cfg.Concurrency {
			wg.Go(func() {
				for next.Add(1) <= int64(cfg.Links) && ctx.Err() == nil {
					if lt := one(); lt.err == "" {
						select {
						case <-rcv.wait(lt.id):
						case <-ctx.Done():
						}
					}
				}
			})
		}
	}
	wg.Wait()
	want := cfg.Links - int(failed.Load())
	poll(ctx, 20*time.Millisecond, func() bool { return rcv.count() >= want })
	stopProgress()

	var createSpan, claimToHook, createToHook, queued, session, dispatch []time.Duration
	last := begin
	for _, lt := range times {
		if lt.err != "" {
			rep.Errors[lt.err]++
			continue
		}
		createSpan = append(createSpan, lt.created.Sub(lt.start))
		at, st, ok := rcv.at(lt.id)
		if !ok {
			rep.Errors["NO_WEBHOOK"]++
			continue
		}
		claimToHook = append(claimToHook, at.Sub(lt.claimed))
		createToHook = append(createToHook, at.Sub(lt.start))
		queued = append(queued, time.Duration(st[1]-st[0])*time.Millisecond)
		session = append(session, time.Duration(st[2]-st[1])*time.Millisecond)
		dispatch = append(dispatch, at.Sub(time.UnixMilli(st[2])))
		if at.After(last) {
			last = at
		}
		rep.Completed++
	}
	rep.CPU = cpu.stop(rep.Completed)
	rep.DurationSec = last.Sub(begin).Seconds()
	if rep.DurationSec > 0 {
		rep.LinksPerSecond = float64(rep.Completed) / rep.DurationSec
	}
	rep.Latency["create"] = summarize(createSpan)
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
		rep.Processes = append(rep.Processes, ProcessMemory{Name: "dev", PeakRSSBytes: dep.dev.peakRSS()})
	}
	rep.Processes = append(rep.Processes, ProcessMemory{Name: "bench", PeakRSSBytes: procStatus(os.Getpid(), "VmHWM")})
	return rep, nil
}
