package bench

import (
	"cmp"
	"errors"
	"io"
	"os"
	"time"
)

// Config configures a bench run. Zero fields take the defaults documented on
// each.
type Config struct {
	// Binary is the linkflow executable bench starts as child processes
	// (`linkflow dev`, `linkflow worker`, `linkflow dispatcher`). Required
	// with Embedded, WorkerOnly or DispatcherOnly; `linkflow bench` passes
	// its own executable.
	Binary string

	// URL is the API of the deployment to drive end to end. Default
	// "http://127.0.0.1:8080". Ignored with Embedded.
	URL string
	// APIKey is the deployment's API key, with the links:write scope.
	// Required end to end without Embedded.
	APIKey string
	// WebhookSecret is the organization's webhook secret, to verify every
	// webhook. Required end to end without Embedded.
	WebhookSecret string
	// ReceiverAddr is where bench's own webhook receiver listens. Default
	// "127.0.0.1:0" (a free port).
	ReceiverAddr string
	// ReceiverURL is the URL the deployment reaches the receiver at. Default
	// "http://<the receiver's address>".
	ReceiverURL string
	// Embedded starts `linkflow dev` as a child process (its own Redis,
	// embedded JetStream, the API's rate limits off) and drives it end to
	// end.
	Embedded bool

	// WorkerOnly preloads claimed links straight into Redis and JetStream,
	// then measures how fast worker processes drain them.
	WorkerOnly bool
	// DispatcherOnly preloads completion events, then measures how fast a
	// dispatcher process delivers them to bench's receiver. At most one of
	// WorkerOnly and DispatcherOnly.
	DispatcherOnly bool

	// Links is how many links to run. Default 1000.
	Links int
	// Rate, when positive, makes the end-to-end load an open loop: links
	// are created at this fixed rate per second. Default 0: a closed loop.
	Rate float64
	// Concurrency is the closed loop's links in flight at once (used when
	// Rate is 0). Default 64.
	Concurrency int
	// OpsPerLink is the operations of each link: reads of the
	// integration's resources, in turn. Default 2.
	OpsPerLink int
	// Integration is the integration the links use. Default "tmobile".
	Integration string
	// ProviderLatency is the sandbox's latency per operation in the
	// processes bench starts. Default 0.
	ProviderLatency time.Duration
	// Workers is the worker processes WorkerOnly starts. Default 1.
	Workers int
	// WorkerConcurrency is the sessions each worker process runs at once
	// (the worker's --concurrency, dev's included). Default 256, the
	// worker's own default.
	WorkerConcurrency int

	// RedisURL and NATSURL, for WorkerOnly and DispatcherOnly, are an
	// existing Redis (with RedisCluster: a Redis Cluster's seed nodes) and
	// NATS JetStream (a cluster's servers, comma-separated) to preload and
	// run against, instead of the servers bench starts. Bench keeps its
	// keys under a prefix of its own. Default: bench starts them.
	RedisURL     string
	RedisCluster bool
	NATSURL      string
	// RedisMasters, without RedisURL, makes bench start a Redis Cluster of
	// that many masters instead of a single server (0 or 1: a single
	// server), so one run can set 1 and 3 masters side by side.
	RedisMasters int
	// StreamReplicas is the JetStream streams' replicas (3 on a cluster).
	// Default 1.
	StreamReplicas int
	// SandboxInRedis keeps the sandbox's accounts in Redis, as a deployment
	// does. Default: in the processes bench starts (--sandbox-memory), so
	// that the figures measure linkflow, not the sandbox's own Redis work.
	SandboxInRedis bool

	// Timeout bounds the whole run; Run gives up after it. Default 10
	// minutes.
	Timeout time.Duration
	// Keep keeps the data directory of the deployment bench started.
	Keep bool
	// ProfileDir, when set, receives CPU and allocation profiles of every
	// process bench started, taken under load.
	ProfileDir string
	// ProfileSeconds is the length of the CPU profiles. Default 5.
	ProfileSeconds int

	// Progress receives a progress line every second and notes on what
	// bench is doing. Default os.Stderr.
	Progress io.Writer
	// Debug writes every transport error of the end-to-end calls to
	// Progress.
	Debug bool
}

// Defaults of the Config fields.
const (
	defaultURL               = "http://127.0.0.1:8080"
	defaultReceiverAddr      = "127.0.0.1:0"
	defaultLinks             = 1000
	defaultConcurrency       = 64
	defaultOpsPerLink        = 2
	defaultIntegration       = "tmobile"
	defaultWorkers           = 1
	defaultWorkerConcurrency = 256
	defaultTimeout           = 10 * time.Minute
	defaultProfileSeconds    = 5
)

// withDefaults returns cfg with its zero fields set to the documented
// defaults.
func (cfg Config) withDefaults() Config {
	cfg.URL = cmp.Or(cfg.URL, defaultURL)
	cfg.ReceiverAddr = cmp.Or(cfg.ReceiverAddr, defaultReceiverAddr)
	cfg.Links = cmp.Or(cfg.Links, defaultLinks)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, defaultConcurrency)
	cfg.OpsPerLink = cmp.Or(cfg.OpsPerLink, defaultOpsPerLink)
	cfg.Integration = cmp.Or(cfg.Integration, defaultIntegration)
	cfg.Workers = cmp.Or(cfg.Workers, defaultWorkers)
	cfg.WorkerConcurrency = cmp.Or(cfg.WorkerConcurrency, defaultWorkerConcurrency)
	cfg.Timeout = cmp.Or(cfg.Timeout, defaultTimeout)
	cfg.ProfileSeconds = cmp.Or(cfg.ProfileSeconds, defaultProfileSeconds)
	if cfg.Progress == nil {
		cfg.Progress = os.Stderr
	}
	return cfg
}

// validate checks a Config with its defaults filled in.
func (cfg Config) validate() error {
	switch {
	case cfg.Links < 1 || cfg.OpsPerLink < 1 || cfg.Concurrency < 1 || cfg.Rate < 0:
		return errors.New("bench: links, operations per link and concurrency must be positive, and the rate not negative")
	case cfg.Workers < 1 || cfg.WorkerConcurrency < 1 || cfg.ProfileSeconds < 1 || cfg.Timeout < 0 || cfg.ProviderLatency < 0:
		return errors.New("bench: workers, worker concurrency, profile seconds and the timeout must be positive, and the provider latency not negative")
	case cfg.WorkerOnly && cfg.DispatcherOnly:
		return errors.New("bench: worker only and dispatcher only exclude each other")
	case cfg.Binary == "" && (cfg.Embedded || cfg.WorkerOnly || cfg.DispatcherOnly):
		return errors.New("bench: the linkflow binary to start (Config.Binary) is required")
	case !cfg.Embedded && !cfg.WorkerOnly && !cfg.DispatcherOnly && (cfg.APIKey == "" || cfg.WebhookSecret == ""):
		return errors.New("bench: the API key and the webhook secret are required, unless bench starts the deployment itself (embedded)")
	}
	return nil
}
