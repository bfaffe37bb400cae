package main

import (
	"flag"
	"net"
	"os"
	"testing"
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
