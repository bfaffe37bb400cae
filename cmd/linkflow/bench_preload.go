package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// bareDeployment is Redis and JetStream without linkflow processes: bench
// preloads work into them and then starts the one process it measures.
type bareDeployment struct {
	dir     string
	redis   *embedded.Redis
	ns      interface{ Shutdown() }
	natsURL string
	keys    string
	rdb     *redis.Client
	st      *store.Store
	nc      *nats.Conn
	js      jetstream.JetStream
	org     *linkflow.Org
}

func startBareDeployment(ctx context.Context) (*bareDeployment, error) {
	dir, err := os.MkdirTemp("", "linkflow-bench-")
	if err != nil {
		return nil, err
	}
	b := &bareDeployment{dir: dir, keys: store.GenerateKey("bench")}
	if b.redis, err = embedded.StartRedis(embedded.RedisOptions{Dir: filepath.Join(dir, "redis"), AppendOnly: true}); err != nil {
		return nil, err
	}
	ns, err := embedded.StartNATS(embedded.NATSOptions{Dir: filepath.Join(dir, "jetstream")})
	if err != nil {
		return nil, err
	}
	b.ns, b.natsURL = ns, ns.ClientURL()
	b.rdb = redis.NewClient(&redis.Options{Addr: b.redis.Addr, PoolSize: 128})
	kr, _ := store.ParseKeyring(b.keys)
	if b.st, err = store.New(store.Config{Redis: b.rdb, Keyring: kr}); err != nil {
		return nil, err
	}
	if b.nc, err = nats.Connect(b.natsURL); err != nil {
		return nil, err
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		return nil, err
	}
	if err := outbox.EnsureStreams(ctx, b.js, outbox.StreamConfig{}); err != nil {
		return nil, err
	}
	b.org, err = b.st.CreateOrg(ctx, "", "bench", "")
	return b, err
}

func (b *bareDeployment) stop(keep bool) {
	b.nc.Close()
	b.ns.Shutdown()
	_ = b.rdb.Close()
	b.redis.Stop()
	if !keep {
		_ = os.RemoveAll(b.dir)
	}
}

// serverArgs are the flags a linkflow process needs to join the deployment.
func (b *bareDeployment) serverArgs(metricsAddr string) []string {
	return []string{"--nats-url", b.natsURL, "--redis-url", b.redis.URL, "--encryption-keys", b.keys,
		"--metrics-addr", metricsAddr, "--log-level", "warn", "--sandbox"}
}

// parallel runs fn(i) for i in [0, n) on a few goroutines.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// benchWorkerOnly preloads claimed links into Redis and JetStream, then
// starts worker processes and measures how fast they drain them.
func benchWorkerOnly(ctx context.Context, f benchFlags) (*report, error) {
	rep := &report{Mode: "worker only", Links: f.links, OpsPerLink: f.opsPerLink, Integration: f.integration,
		ProviderLatency: f.latency.String(), Errors: map[string]int{}, Latency: map[string]percentiles{}}
	b, err := startBareDeployment(ctx)
	if err != nil {
		return nil, err
	}
	defer b.stop(f.keepDir)

	var ops []linkflow.Operation
	for _, o := range operationsFor(f.integration, f.opsPerLink) {
		ops = append(ops, linkflow.Operation{Resource: o["resource"], Action: o["action"]})
	}
	fmt.Fprintf(os.Stderr, "bench: preloading %d claimed links\n", f.links)
	pub, err := outbox.NewPublisher(outbox.PublisherConfig{JetStream: b.js, Store: b.st})
	if err != nil {
		return nil, err
	}
	if err := pub.Start(ctx); err != nil {
		return nil, err
	}
	defer pub.Stop()
	if err := parallel(f.links, 32, func(i int) error {
		c, err := b.st.CreateLink(ctx, linkflow.NewLink{OrgID: b.org.ID, IntegrationID: f.integration, Operations: ops, ExpiresIn: time.Hour})
		if err != nil {
			return err
		}
		claim, err := b.st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, "bench", "pass_good")
		if err != nil {
			return err
		}
		return pub.Publish(ctx, claim.Message)
	}); err != nil {
		return nil, fmt.Errorf("preload: %w", err)
	}

	conc := f.workerConc
	if conc == 0 {
		conc = 256
	}
	rep.Load = fmt.Sprintf("%d worker process(es), %d sessions each", f.workers, conc)
	var workers []*child
	defer func() {
		for _, w := range workers {
			w.stop()
		}
	}()
	eventsKey := "lf:{" + b.org.ID + "}:events"
	begin := time.Now()
	for i := range f.workers {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := append([]string{"worker"}, b.serverArgs(addr)...)
		args = append(args, "--concurrency", strconv.Itoa(conc), "--sandbox-latency", f.latency.String())
		w, err := startChild(ctx, fmt.Sprintf("worker-%d", i+1), addr, nil, args...)
		if err != nil {
			return nil, err
		}
		workers = append(workers, w)
	}
	baseline := workers[0].rss()
	var cpu cpuMeter
	cpu.add("redis", b.redis.Pid())
	cpu.add("bench+nats", os.Getpid())
	for _, w := range workers {
		cpu.add(w.name, w.cmd.Process.Pid)
	}
	profiles := profileChildren(f.profileDir, f.profileSecs, workers...)
	var done atomic.Int64
	peakInFlight := 0
	stop := make(chan struct{})
	go progress(stop, func() string {
		return fmt.Sprintf("bench: %d/%d links done, %d in flight", done.Load(), f.links, peakInFlight)
	})
	for int(done.Load()) < f.links && ctx.Err() == nil {
		n, err := b.rdb.XLen(ctx, eventsKey).Result()
		if err == nil {
			done.Store(n)
		}
		if v, err := workers[0].metric("linkflow_worker_sessions_in_flight"); err == nil && int(v) > peakInFlight {
			peakInFlight = int(v)
		}
		time.Sleep(25 * time.Millisecond) // sampling interval
	}
	close(stop)
	elapsed := time.Since(begin)
	profiles.Wait()
	rep.Completed = int(done.Load())
	rep.CPU = cpu.stop(rep.Completed)
	rep.DurationSec = elapsed.Seconds()
	rep.LinksPerSecond = float64(rep.Completed) / rep.DurationSec
	rep.PeakInFlight = peakInFlight
	for _, w := range workers {
		rep.Processes = append(rep.Processes, procStat{Name: w.name, PeakRSSBytes: w.peakRSS()})
	}
	if peakInFlight > 0 {
		rep.BytesPerSession = float64(workers[0].peakRSS()-baseline) / float64(peakInFlight)
	}
	failed, _ := countFailed(ctx, b)
	if failed > 0 {
		rep.Errors["LINK_FAILED"] = failed
	}
	return rep, nil
}

// countFailed counts link.failed events in the organization's event log.
func countFailed(ctx context.Context, b *bareDeployment) (int, error) {
	msgs, err := b.rdb.XRange(ctx, "lf:{"+b.org.ID+"}:events", "-", "+").Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		if m.Values["type"] == linkflow.EventLinkFailed {
			n++
		}
	}
	return n, nil
}

// benchDispatcherOnly preloads finished links with their events, then starts
// one dispatcher process and measures how fast it delivers to bench's
// receiver.
func benchDispatcherOnly(ctx context.Context, f benchFlags) (*report, error) {
	rep := &report{Mode: "dispatcher only", Links: f.links, Errors: map[string]int{}, Latency: map[string]percentiles{},
		Load: "one dispatcher process"}
	b, err := startBareDeployment(ctx)
	if err != nil {
		return nil, err
	}
	defer b.stop(f.keepDir)
	rcv, err := startReceiver(f.receiverAddr, f.receiverURL, b.org.WebhookSecrets[0])
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	pub, err := outbox.NewPublisher(outbox.PublisherConfig{JetStream: b.js, Store: b.st})
	if err != nil {
		return nil, err
	}
	if err := pub.Start(ctx); err != nil {
		return nil, err
	}
	defer pub.Stop()
	fmt.Fprintf(os.Stderr, "bench: preloading %d events\n", f.links)
	if err := parallel(f.links, 32, func(i int) error {
		c, err := b.st.CreateLink(ctx, linkflow.NewLink{OrgID: b.org.ID, IntegrationID: f.integration, WebhookURL: rcv.url,
			Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}}, ExpiresIn: time.Hour})
		if err != nil {
			return err
		}
		fin, err := b.st.FailLink(ctx, b.org.ID, c.Link.ID, linkflow.LinkError{Code: linkflow.FailureDeclined, Message: "bench"})
		if err != nil {
			return err
		}
		return pub.Publish(ctx, fin.Event)
	}); err != nil {
		return nil, fmt.Errorf("preload: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	args := append([]string{"dispatcher"}, b.serverArgs(addr)...)
	args = append(args, "--webhook-allow-private")
	disp, err := startChild(ctx, "dispatcher", addr, nil, args...)
	if err != nil {
		return nil, err
	}
	defer disp.stop()
	profiles := profileChildren(f.profileDir, f.profileSecs, disp)
	defer profiles.Wait()
	var cpu cpuMeter
	cpu.add("redis", b.redis.Pid())
	cpu.add("bench+nats+receiver", os.Getpid())
	cpu.add("dispatcher", disp.cmd.Process.Pid)
	stop := make(chan struct{})
	go progress(stop, func() string { return fmt.Sprintf("bench: %d/%d delivered", rcv.count(), f.links) })
	for rcv.count() < f.links && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond) // polling bench's own counter
	}
	close(stop)
	rep.Completed = rcv.count()
	rep.CPU = cpu.stop(rep.Completed)
	rep.DurationSec = time.Since(begin).Seconds()
	rep.DeliveriesPerSecond = float64(rep.Completed) / rep.DurationSec
	rep.LinksPerSecond = rep.DeliveriesPerSecond
	rep.BadSignatures = int(rcv.bad.Load())
	rep.Processes = append(rep.Processes, procStat{Name: "dispatcher", PeakRSSBytes: disp.peakRSS()})
	return rep, nil
}
