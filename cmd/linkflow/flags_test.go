package main

import (
	"flag"
	"os"
	"testing"
)

// The sandbox's integrations are only on by default in dev: a production
// role registers them only when asked (--sandbox).
func TestSandboxOffOutsideDev(t *testing.T) {
	t.Setenv(envName("sandbox"), "") // restored when the test ends
	os.Unsetenv(envName("sandbox"))
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
		c.register(fs, !tt.dev, tt.dev)
		if err := parseFlags(fs, tt.args); err != nil {
			t.Fatal(err)
		}
		if c.sandbox != tt.want {
			t.Errorf("%s %v: sandbox %v, want %v", tt.name, tt.args, c.sandbox, tt.want)
		}
	}
}
