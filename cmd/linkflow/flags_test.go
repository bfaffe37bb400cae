package main

import (
	"flag"
	"net"
	"os"
	"testing"
	"time"
)

// The sandbox's integrations are only on by default in dev: a production
// role registers them only when asked (--sandbox). Metrics default to
// loopback.
func TestSafeDefaults(t *testing.T) {
	for _, name := range []string{"sandbox", "metrics-addr"} {
		t.Setenv(envName(name), "") // restored when the test ends
		os.Unsetenv(envName(name))
	}
	for _, tt := range []struct {
		name string
		dev  bool
		args []string
		want bool
	}{
		{"api", false, nil, false},
		{"worker", false, nil, false},
		{"worker", false, []string{"--sandbox"}, true},
		{"dev", true, nil, true},
		{"dev", true, []string{"--sandbox=false"}, false},
	} {
		fs := flag.NewFlagSet(tt.name, flag.ContinueOnError)
		var c common
		c.register(fs, tt.name)
		if err := parseFlags(fs, tt.args); err != nil {
			t.Fatal(err)
		}
		if c.sandbox != tt.want {
			t.Errorf("%s %v: sandbox %v, want %v", tt.name, tt.args, c.sandbox, tt.want)
		}
		// Metrics and pprof default to loopback, never every interface.
		if h, _, err := net.SplitHostPort(c.metricsAddr); err != nil || h != "127.0.0.1" {
			t.Errorf("%s: --metrics-addr defaults to %q, want loopback", tt.name, c.metricsAddr)
		}
	}
}

// dev's and bench's --redis-url and --nats-url (empty: servers of their own)
// are never read from the environment: a host's LINKFLOW_REDIS_URL is its
// deployment's.
func TestCommandLineOnlyFlags(t *testing.T) {
	t.Setenv("LINKFLOW_REDIS_URL", "redis://production:6379")
	t.Setenv("LINKFLOW_LOG_LEVEL", "debug")
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	redisURL := fs.String("redis-url", "", "")
	logLevel := fs.String("log-level", "info", "")
	if err := parseFlags(fs, nil, "redis-url", "nats-url"); err != nil {
		t.Fatal(err)
	}
	if *redisURL != "" || *logLevel != "debug" {
		t.Fatalf("redis-url %q (want none), log-level %q (want the environment's)", *redisURL, *logLevel)
	}
	if err := parseFlags(fs, []string{"--redis-url", "redis://mine:6379"}, "redis-url"); err != nil || *redisURL != "redis://mine:6379" {
		t.Fatalf("given on the command line: %q %v", *redisURL, err)
	}
}

// --webhook-secret-cache 0 turns the cache off, as a negative value does; it
// is not the component's zero value, which means its 5 s default.
func TestWebhookSecretCacheZeroIsOff(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 5 * time.Second},
		{[]string{"--webhook-secret-cache", "2s"}, 2 * time.Second},
		{[]string{"--webhook-secret-cache", "0"}, -1},
		{[]string{"--webhook-secret-cache", "-1s"}, -time.Second},
	} {
		fs := flag.NewFlagSet("dispatcher", flag.ContinueOnError)
		var f dispatcherFlags
		f.register(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.SecretCacheTTL != tt.want {
			t.Errorf("%v: SecretCacheTTL %v, want %v", tt.args, cfg.SecretCacheTTL, tt.want)
		}
	}
}
