package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/linkflow/linkflow"
)

// runWorkerOnly preloads claimed links into Redis and JetStream, then starts
// worker processes and measures how fast they drain them.
func runWorkerOnly(ctx context.Context, cfg Config) (*Report, error) {
	rep := newReport("worker only", cfg)
	rep.ProviderLatency = cfg.ProviderLatency.String()
	b, err := startBareDeployment(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.stop(cfg.Keep)

	var ops []linkflow.Operation
	for _, res := range readsOf(cfg.Integration, cfg.OpsPerLink) {
		ops = append(ops, linkflow.Operation{Resource: res, Action: "read"})
	}
	fmt.Fprintf(cfg.Progress, "bench: preloading %d claimed links\n", cfg.Links)
	if err := b.preload(ctx, cfg.Links, func(int) (linkflow.Message, error) {
		c, err := b.st.CreateLink(ctx, linkflow.NewLink{OrgID: b.org.ID, IntegrationID: cfg.Integration, Operations: ops, ExpiresIn: time.Hour})
		if err != nil {
			return linkflow.Message{}, err
		}
		claim, err := b.st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, "bench", "pass_good")
		if err != nil {
			return linkflow.Message{}, err
		}
		return claim.Message, nil
	}); err != nil {
		return nil, fmt.Errorf("preload: %w", err)
	}

	rep.Load = fmt.Sprintf("%d worker process(es), %d sessions each", cfg.Workers, cfg.WorkerConcurrency)
	var workers []*child
	defer func() {
		for _, w := range workers {
			w.stop()
		}
	}()
	aof := startAOFMeter(ctx, b.rdb) // before the measured processes start
	begin := time.Now()
	for i := range cfg.Workers {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := append([]string{"worker"}, b.serverArgs(addr)...)
		args = append(args, "--concurrency", strconv.Itoa(cfg.WorkerConcurrency), "--sandbox-latency", cfg.ProviderLatency.String())
		w, err := startChild(ctx, cfg.Binary, fmt.Sprintf("worker-%d", i+1), addr, nil, args...)
		if err != nil {
			return nil, err
		}
		workers = append(workers, w)
	}
	baseline := workers[0].rss()
	var cpu cpuMeter
	for i, pid := range b.redisPids() {
		cpu.addWithChildren(fmt.Sprintf("redis-%d", i+1), pid)
	}
	cpu.add("bench+nats", os.Getpid())
	for _, w := range workers {
		cpu.add(w.name, w.pid())
	}
	profiles := profileChildren(cfg.Progress, cfg.ProfileDir, cfg.ProfileSeconds, workers...)
	var done, failed, peakInFlight atomic.Int64
	stopProgress := progress(cfg.Progress, func() string {
		return fmt.Sprintf("bench: %d/%d links done, %d in flight", done.Load(), cfg.Links, peakInFlight.Load())
	})
	poll(ctx, 100*time.Millisecond, func() bool {
		if d, f, err := b.finished(ctx); err == nil {
			done.Store(int64(d))
			failed.Store(int64(f))
		}
		if v, err := workers[0].metric("linkflow_worker_sessions_in_flight"); err == nil && int64(v) > peakInFlight.Load() {
			peakInFlight.Store(int64(v))
		}
		return done.Load() >= int64(cfg.Links)
	})
	stopProgress()
	elapsed := time.Since(begin)
	profiles.Wait()
	rep.Completed = int(done.Load())
	rep.CPU = cpu.stop(rep.Completed)
	rep.AOF = aof.stop(ctx, rep.Completed)
	rep.DurationSec = elapsed.Seconds()
	rep.LinksPerSecond = float64(rep.Completed) / rep.DurationSec
	rep.PeakInFlight = int(peakInFlight.Load())
	for _, w := range workers {
		rep.Processes = append(rep.Processes, ProcessMemory{Name: w.name, PeakRSSBytes: w.peakRSS()})
	}
	if rep.PeakInFlight > 0 {
		rep.BytesPerSession = float64(workers[0].peakRSS()-baseline) / float64(rep.PeakInFlight)
	}
	if n := failed.Load(); n > 0 {
		rep.Errors["LINK_FAILED"] = int(n)
	}
	return rep, nil
}

// runDispatcherOnly preloads finished links with their completion events,
// then starts one dispatcher process and measures how fast it delivers them
// to bench's receiver.
func runDispatcherOnly(ctx context.Context, cfg Config) (*Report, error) {
	rep := &Report{Mode: "dispatcher only", Links: cfg.Links, Errors: map[string]int{}, Latency: map[string]Percentiles{},
		Load: "one dispatcher process"}
	b, err := startBareDeployment(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.stop(cfg.Keep)
	rcv, err := startReceiver(cfg.ReceiverAddr, cfg.ReceiverURL, b.org.WebhookSecrets[0])
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	fmt.Fprintf(cfg.Progress, "bench: preloading %d events\n", cfg.Links)
	if err := b.preload(ctx, cfg.Links, func(int) (linkflow.Message, error) {
		c, err := b.st.CreateLink(ctx, linkflow.NewLink{OrgID: b.org.ID, IntegrationID: cfg.Integration, WebhookURL: rcv.url,
			Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}}, ExpiresIn: time.Hour})
		if err != nil {
			return linkflow.Message{}, err
		}
		fin, err := b.st.FailLink(ctx, b.org.ID, c.Link.ID, linkflow.LinkError{Code: linkflow.FailureDeclined, Message: "bench"})
		if err != nil {
			return linkflow.Message{}, err
		}
		return fin.Event, nil
	}); err != nil {
		return nil, fmt.Errorf("preload: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	aof := startAOFMeter(ctx, b.rdb) // before the measured processes start
	begin := time.Now()
	args := append([]string{"dispatcher"}, b.serverArgs(addr)...)
	args = append(args, "--webhook-allow-private")
	disp, err := startChild(ctx, cfg.Binary, "dispatcher", addr, nil, args...)
	if err != nil {
		return nil, err
	}
	defer disp.stop()
	profiles := profileChildren(cfg.Progress, cfg.ProfileDir, cfg.ProfileSeconds, disp)
	defer profiles.Wait()
	var cpu cpuMeter
	for i, pid := range b.redisPids() {
		cpu.addWithChildren(fmt.Sprintf("redis-%d", i+1), pid)
	}
	cpu.add("bench+nats+receiver", os.Getpid())
	cpu.add("dispatcher", disp.pid())
	stopProgress := progress(cfg.Progress, func() string { return fmt.Sprintf("bench: %d/%d delivered", rcv.count(), cfg.Links) })
	poll(ctx, 20*time.Millisecond, func() bool { return rcv.count() >= cfg.Links })
	stopProgress()
	rep.Completed = rcv.count()
	rep.CPU = cpu.stop(rep.Completed)
	rep.AOF = aof.stop(ctx, rep.Completed)
	rep.DurationSec = time.Since(begin).Seconds()
	rep.DeliveriesPerSecond = float64(rep.Completed) / rep.DurationSec
	rep.LinksPerSecond = rep.DeliveriesPerSecond
	rep.BadSignatures = int(rcv.bad.Load())
	rep.Processes = append(rep.Processes, ProcessMemory{Name: "dispatcher", PeakRSSBytes: disp.peakRSS()})
	return rep, nil
}
