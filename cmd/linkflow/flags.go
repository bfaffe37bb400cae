package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// envName is the environment variable of a flag: --redis-url is
// LINKFLOW_REDIS_URL.
func envName(flagName string) string {
	return "LINKFLOW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its LINKFLOW_* environment variable. The command line wins.
// The flags named in commandLineOnly are never read from the environment:
// dev's and bench's --redis-url and --nats-url, empty by default so that
// they start servers of their own, would otherwise join the deployment a
// host's LINKFLOW_REDIS_URL names (with dev's known API key and webhooks
// to private addresses, or bench's test streams).
func parseFlags(fs *flag.FlagSet, args []string, commandLineOnly ...string) error {
	fs.Usage = func() {
		env := "Every flag can also be set with its environment variable: LINKFLOW_ and its name in capitals, - as _\n(--redis-url as LINKFLOW_REDIS_URL)."
		if len(commandLineOnly) > 0 {
			env += " But only the command line sets --" + strings.Join(commandLineOnly, " and --") + "."
		}
		fmt.Fprintf(fs.Output(), "Usage: linkflow %s [flags]\n\n%s\n\n", fs.Name(), env)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil || slices.Contains(commandLineOnly, f.Name) {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// common are the flags every server role shares.
type common struct {
	natsURL        string
	natsCreds      string
	natsCA         string
	natsCert       string
	natsKey        string
	redisURL       string
	redisCluster   bool
	redisPrefix    string
	logLevel       string
	logFormat      string
	encryptionKeys string
	metricsAddr    string
	remote         string
	remoteToken    string
	sandbox        bool
	sandboxLatency time.Duration
	sandboxSlowMS  int
	sandboxMemory  bool
	streamReplicas int
	startupTimeout time.Duration
}

// metricsDefaults is where each role serves /metrics and pprof unless told
// otherwise: loopback only, a port per role so that several roles share a
// host.
var metricsDefaults = map[string]string{
	"api": "127.0.0.1:9090", "worker": "127.0.0.1:9091", "dispatcher": "127.0.0.1:9092", "dev": "127.0.0.1:9090",
}

// register adds the flags every server role shares, with role's defaults:
// dev has no Redis and NATS URLs to require, and the sandbox on.
func (c *common) register(fs *flag.FlagSet, role string) {
	dev := role == "dev"
	if !dev {
		fs.StringVar(&c.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated (a cluster's servers): nats://[user:password@]host:port, tls:// for TLS; JetStream enabled")
		fs.StringVar(&c.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL: redis://[user:password@]host:port[/db], rediss:// for TLS; a Redis Cluster's seed nodes with --redis-cluster (more seeds comma-separated or as addr= options)")
		fs.BoolVar(&c.redisCluster, "redis-cluster", false, "--redis-url names a Redis Cluster (a URL with a comma always does)")
		fs.StringVar(&c.redisPrefix, "redis-prefix", "lf:", "prefix of every Redis key, to share one Redis between deployments")
	}
	fs.StringVar(&c.natsCreds, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&c.natsCA, "nats-ca", "", "PEM file of the certificates that verify the NATS servers' (default: the system's)")
	fs.StringVar(&c.natsCert, "nats-cert", "", "client certificate (PEM) for mutual TLS with NATS; with --nats-key")
	fs.StringVar(&c.natsKey, "nats-key", "", "key of --nats-cert (PEM)")
	fs.DurationVar(&c.startupTimeout, "startup-timeout", 2*time.Minute, "how long a process waits at start for Redis and NATS (and JetStream's streams) before it gives up; a wrong configuration fails at once")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&c.encryptionKeys, "encryption-keys", "", "AES-256 keys sealing secrets at rest: id:base64key,... (the first seals, all open)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", metricsDefaults[role], "address serving Prometheus /metrics and pprof, never the API's own address; keep it off the public network (empty: off)")
	fs.StringVar(&c.remote, "remote-providers", "", "comma-separated base URLs of remote integrations (the HTTP provider protocol); their catalogs are registered")
	fs.StringVar(&c.remoteToken, "remote-providers-token", "", "bearer token sent to remote providers")
	fs.BoolVar(&c.sandbox, "sandbox", dev, "register the built-in sandbox integrations (tmobile, att, verizon, ubereats); each organization has its own sandbox accounts")
	fs.DurationVar(&c.sandboxLatency, "sandbox-latency", 0, "sandbox latency per operation, to model real providers")
	fs.IntVar(&c.sandboxSlowMS, "sandbox-slow-ms", 2000, "how long each operation of the sandbox user user_slow takes, in ms")
	fs.BoolVar(&c.sandboxMemory, "sandbox-memory", false, "keep the sandbox's accounts in this process, not in Redis: for benchmarks of linkflow alone (not shared between processes)")
	fs.IntVar(&c.streamReplicas, "stream-replicas", 1, "JetStream stream replicas (3 on a cluster)")
}
