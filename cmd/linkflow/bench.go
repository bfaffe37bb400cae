package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/linkflow/linkflow/bench"
	"github.com/linkflow/linkflow/internal/redact"
)

// runBench is `linkflow bench`: flags into a bench.Config, the report to
// stdout, progress to stderr.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg bench.Config
	var jsonOut bool
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "API of the deployment to drive (ignored with --embedded; default: LINKFLOW_API_URL when set, as dev exports it, with its key and webhook secret)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "API key of the deployment (ignored with --embedded)")
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", "", "the organization's webhook secret, to verify every webhook (ignored with --embedded)")
	fs.StringVar(&cfg.ReceiverAddr, "receiver-addr", "127.0.0.1:0", "address of bench's own webhook receiver")
	fs.StringVar(&cfg.ReceiverURL, "receiver-url", "", "URL the deployment reaches the receiver at (default: http://<receiver-addr>)")
	fs.BoolVar(&cfg.Embedded, "embedded", false, "start `linkflow dev` as a child process (own Redis, embedded JetStream) and drive it")
	fs.IntVar(&cfg.Links, "links", 1000, "links to run")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: create links at this fixed rate per second (latency is not hidden by coordinated omission)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "closed loop: links in flight at once (used when --rate is 0)")
	fs.IntVar(&cfg.OpsPerLink, "ops-per-link", 2, "operations per link (reads of the integration's resources, in turn)")
	fs.StringVar(&cfg.Integration, "integration", "tmobile", "integration the links use")
	fs.DurationVar(&cfg.ProviderLatency, "provider-latency", 0, "with --embedded: sandbox latency per operation")
	fs.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&cfg.WorkerOnly, "worker-only", false, "preload claimed links straight into Redis and JetStream, then measure how fast worker processes drain them")
	fs.BoolVar(&cfg.DispatcherOnly, "dispatcher-only", false, "preload completion events, then measure how fast a dispatcher process delivers them to bench's receiver")
	fs.IntVar(&cfg.Workers, "workers", 1, "with --worker-only: worker processes to start")
	fs.IntVar(&cfg.WorkerConcurrency, "worker-concurrency", 0, "sessions per worker process (default: the worker's default, 256)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the embedded deployment's data directory")
	fs.StringVar(&cfg.ProfileDir, "profile", "", "write CPU and allocation profiles of every process bench started into this directory")
	fs.IntVar(&cfg.ProfileSeconds, "profile-seconds", 5, "length of the CPU profiles")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "with --worker-only or --dispatcher-only: an existing Redis to run against (default: bench starts one)")
	fs.BoolVar(&cfg.RedisCluster, "redis-cluster", false, "--redis-url names a Redis Cluster (a list of nodes always does)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "with --worker-only or --dispatcher-only: an existing NATS JetStream, servers comma-separated (default: bench starts one)")
	fs.IntVar(&cfg.RedisMasters, "redis-masters", 0, "without --redis-url: start a Redis Cluster of this many masters (at least 3) instead of one server")
	fs.IntVar(&cfg.StreamReplicas, "stream-replicas", 1, "JetStream stream replicas (3 on a cluster)")
	fs.BoolVar(&cfg.SandboxInRedis, "sandbox-in-redis", false, "keep the sandbox's accounts in Redis as a deployment does (default: in the processes, so the figures measure linkflow alone)")
	if err := parseFlags(fs, args, "redis-url", "nats-url"); err != nil {
		return err
	}
	// In a shell with dev's exports, its key and secret (LINKFLOW_API_KEY,
	// LINKFLOW_WEBHOOK_SECRET) go to dev's API, not to whatever listens on
	// the default address; bench says which deployment it drives.
	if u := os.Getenv("LINKFLOW_API_URL"); u != "" && !explicit(fs, "url") {
		cfg.URL = u
	}
	if !cfg.Embedded && !cfg.WorkerOnly && !cfg.DispatcherOnly {
		fmt.Fprintf(os.Stderr, "bench: driving %s\n", redact.URLs(cfg.URL))
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Binary, cfg.Progress, cfg.Debug = exe, os.Stderr, os.Getenv("LINKFLOW_BENCH_DEBUG") != ""
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.Print(os.Stdout)
	}
	// The report is printed either way; a run in which no link completed
	// measured nothing, and a script running bench must see that.
	if rep.Completed == 0 {
		return fmt.Errorf("bench: no link completed (errors: %v)", rep.Errors)
	}
	return nil
}
