package webhooks

import (
	"testing"
	"time"
)

// FuzzParseRetryAfter reads arbitrary Retry-After values, as a receiver may
// send them. Properties: no panic; the answer is 0 (absent or unreadable) or
// within [lo, hi].
func FuzzParseRetryAfter(f *testing.F) {
	for _, v := range []string{"", "0", "120", "-1", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "1.5", " 7"} {
		f.Add(v)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lo, hi := time.Second, 24*time.Hour
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now, lo, hi)
		if d != 0 && (d < lo || d > hi) {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [%v, %v]", v, d, lo, hi)
		}
	})
}
