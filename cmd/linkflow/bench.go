package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// benchFlags configure `linkflow bench`.
type benchFlags struct {
	url            string
	apiKey         string
	webhookSecret  string
	receiverAddr   string
	receiverURL    string
	embedded       bool
	links          int
	rate           float64
	concurrency    int
	opsPerLink     int
	integration    string
	latency        time.Duration
	jsonOut        bool
	workerOnly     bool
	dispatcherOnly bool
	workers        int
	workerConc     int
	timeout        time.Duration
	keepDir        bool
	profileDir     string
	profileSecs    int
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var f benchFlags
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080", "API of the deployment to drive (ignored with --embedded)")
	fs.StringVar(&f.apiKey, "api-key", "", "API key of the deployment (ignored with --embedded)")
	fs.StringVar(&f.webhookSecret, "webhook-secret", "", "the organization's webhook secret, to verify every webhook (ignored with --embedded)")
	fs.StringVar(&f.receiverAddr, "receiver-addr", "127.0.0.1:0", "address of bench's own webhook receiver")
	fs.StringVar(&f.receiverURL, "receiver-url", "", "URL the deployment reaches the receiver at (default: http://<receiver-addr>)")
	fs.BoolVar(&f.embedded, "embedded", false, "start `linkflow dev` as a child process (own Redis, embedded JetStream) and drive it")
	fs.IntVar(&f.links, "links", 1000, "links to run")
	fs.Float64Var(&f.rate, "rate", 0, "open loop: create links at this fixed rate per second (latency is not hidden by coordinated omission)")
	fs.IntVar(&f.concurrency, "concurrency", 64, "closed loop: links in flight at once (used when --rate is 0)")
	fs.IntVar(&f.opsPerLink, "ops-per-link", 2, "operations per link (reads of the integration's resources, in turn)")
	fs.StringVar(&f.integration, "integration", "tmobile", "integration the links use")
	fs.DurationVar(&f.latency, "provider-latency", 0, "with --embedded: sandbox latency per operation")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&f.workerOnly, "worker-only", false, "preload claimed links straight into Redis and JetStream, then measure how fast worker processes drain them")
	fs.BoolVar(&f.dispatcherOnly, "dispatcher-only", false, "preload completion events, then measure how fast a dispatcher process delivers them to bench's receiver")
	fs.IntVar(&f.workers, "workers", 1, "with --worker-only: worker processes to start")
	fs.IntVar(&f.workerConc, "worker-concurrency", 0, "sessions per worker process (default: the worker's default, 256)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.BoolVar(&f.keepDir, "keep", false, "keep the embedded deployment's data directory")
	fs.StringVar(&f.profileDir, "profile", "", "write CPU and allocation profiles of every process bench started into this directory")
	fs.IntVar(&f.profileSecs, "profile-seconds", 5, "length of the CPU profiles")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.links < 1 || f.opsPerLink < 1 || (f.rate <= 0 && f.concurrency < 1) {
		return errors.New("bench: --links, --ops-per-link and --concurrency (or --rate) must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var rep *report
	var err error
	switch {
	case f.workerOnly:
		rep, err = benchWorkerOnly(ctx, f)
	case f.dispatcherOnly:
		rep, err = benchDispatcherOnly(ctx, f)
	default:
		rep, err = benchEndToEnd(ctx, f)
	}
	if err != nil {
		return err
	}
	if f.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(os.Stdout)
	return nil
}

// progress prints a line to stderr every second until stop is closed.
func progress(stop <-chan struct{}, line func() string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			fmt.Fprintln(os.Stderr)
			return
		case <-t.C:
			fmt.Fprintf(os.Stderr, "\r%s   ", line())
		}
	}
}

// profileChildren captures a CPU profile of each child now (for secs) and
// an allocation profile after it, into dir. It returns at once.
func profileChildren(dir string, secs int, children ...*child) *sync.WaitGroup {
	var wg sync.WaitGroup
	if dir == "" {
		return &wg
	}
	_ = os.MkdirAll(dir, 0o755)
	for _, c := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			save := func(path, file string) {
				client := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
				resp, err := client.Get("http://" + c.metrics + path)
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", c.name, err)
					return
				}
				defer resp.Body.Close()
				out, err := os.Create(filepath.Join(dir, file))
				if err != nil {
					return
				}
				defer out.Close()
				_, _ = io.Copy(out, resp.Body)
			}
			save(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), c.name+".cpu.pprof")
			save("/debug/pprof/allocs", c.name+".allocs.pprof")
		}()
	}
	return &wg
}
