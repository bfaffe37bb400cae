package redact_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/linkflow/linkflow/internal/redact"
)

func TestURLs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://:secret@cache:6379/2":              "redis://:xxxxx@cache:6379/2",
		"nats://u:secret@n1:4222, nats://n2:4222":   "nats://u:xxxxx@n1:4222, nats://n2:4222",
		"u:secret@n1:4222":                          "u:xxxxx@n1:4222",
		"redis://:se%zzcret@cache:6379":             "(a URL that does not parse)",
		"127.0.0.1:6379":                            "127.0.0.1:6379",
		"redis://u:secret":                          "(a URL that does not parse)", // a host and a port that is not one
		"nats://n1:4222,nats://exa mple:4222":       "nats://n1:4222,(a URL that does not parse)",
		"rediss://u:secret@n1:7000,redis://n3:7002": "rediss://u:xxxxx@n1:7000,redis://n3:7002",
	} {
		if got := redact.URLs(in); got != want {
			t.Errorf("URLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseError(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"redis://:secret@cache:bad",        // a port that is not one
		"redis://u:secret@ca che:6379",     // a bad character in the host
		"redis://:se%zzcret@cache:6379",    // a malformed escape in the password
		"redis://u:secret",                 // user:password given without a host
		"redis://u:secret@cache:6379/\x7f", // a control character
	} {
		_, err := url.Parse(raw)
		if err == nil {
			t.Fatalf("%q parsed", raw)
		}
		got := redact.ParseError(err)
		if got == nil || strings.Contains(got.Error(), "secret") || strings.Contains(got.Error(), "zz") {
			t.Errorf("ParseError(%v) = %v", err, got)
		}
	}
	other := errors.New("redis: invalid URL scheme: https")
	if got := redact.ParseError(other); got != other {
		t.Errorf("an error that is not net/url's came back as %v", got)
	}
}
