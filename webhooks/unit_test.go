package webhooks

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
)

func TestBlockedReason(t *testing.T) {
	t.Parallel()
	tests := []struct{ ip, reason string }{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700:4700::1111", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"172.32.0.1", ""},
		{"192.168.0.1", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"100.128.0.1", ""},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fd00:ec2::254", "cloud metadata"},
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::ffff:10.0.0.1", "private"},
		{"64:ff9b::7f00:1", "loopback (embedded in IPv6)"},
		{"64:ff9b::808:808", ""},
		{"2002:7f00:1::", "loopback (embedded in IPv6)"},
		{"2002:a00:1::", "private (embedded in IPv6)"},
		{"::7f00:1", "loopback (embedded in IPv6)"},
	}
	for _, tt := range tests {
		if got := blockedReason(netip.MustParseAddr(tt.ip)); got != tt.reason {
			t.Errorf("blockedReason(%s) = %q, want %q", tt.ip, got, tt.reason)
		}
	}
}

func TestGuardAllowlist(t *testing.T) {
	t.Parallel()
	// Addresses only: a CIDR or address entry lets its addresses through for
	// any target.
	g, err := newGuard(&Config{Allowlist: []string{"10.1.0.0/16", "192.168.7.7"}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, allowed := range map[string]bool{
		"10.1.2.3:443": true, "10.2.0.1:443": false, "192.168.7.7:80": true, "192.168.7.8:80": false,
		"[::ffff:10.1.0.9]:80": true, "127.0.0.1:80": false, "8.8.8.8:443": true,
	} {
		err := g.control("any.example.com")("tcp", addr, nil)
		if (err == nil) != allowed {
			t.Errorf("control(%s) = %v, want allowed %v", addr, err, allowed)
		}
		if err != nil && !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("control(%s) error %v is not ErrBlockedAddress", addr, err)
		}
	}

	// With names, the CIDR exemptions are theirs alone, and a name never
	// skips the address check by itself.
	g, err = newGuard(&Config{Allowlist: []string{"10.1.0.0/16", "hooks.internal", "*.corp.example"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		host, addr string
		allowed    bool
	}{
		{"hooks.internal", "10.1.2.3:443", true},
		{"HOOKS.internal.", "10.1.2.3:443", true},
		{"a.b.corp.example", "10.1.2.3:443", true},
		{"hooks.internal", "10.2.0.1:443", false}, // an allowlisted name, an address no CIDR covers
		{"hooks.internal", "127.0.0.1:443", false},
		{"evil.example.com", "10.1.2.3:443", false}, // another name resolving into the CIDR
		{"10.1.2.3", "10.1.2.3:443", false},         // an address literal is not a listed name
		{"evil.example.com", "8.8.8.8:443", true},   // public addresses are fine for anyone
	} {
		err := g.control(tt.host)("tcp", tt.addr, nil)
		if (err == nil) != tt.allowed {
			t.Errorf("control(%s -> %s) = %v, want allowed %v", tt.host, tt.addr, err, tt.allowed)
		}
	}
	for host, allowed := range map[string]bool{
		"hooks.internal": true, "HOOKS.internal.": true, "x.hooks.internal": false,
		"a.corp.example": true, "a.b.corp.example": true, "corp.example": false, "evilcorp.example": false,
	} {
		if got := g.hostAllowed(host); got != allowed {
			t.Errorf("hostAllowed(%s) = %v", host, got)
		}
	}
	if _, err := newGuard(&Config{Allowlist: []string{"not a host/x"}}); err == nil {
		t.Error("a malformed allowlist entry was accepted")
	}
}

// The DNS rebinding case at the dial level: the name resolves to loopback,
// and the dial is refused before any connection.
func TestGuardDialRefusesRebinding(t *testing.T) {
	t.Parallel()
	g, err := newGuard(&Config{ConnectTimeout: time.Second, Resolver: resolverFunc(func(string) []netip.Addr {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.dial(context.Background(), "tcp", "public.example.com:80")
	var be *BlockedAddressError
	if !errors.As(err, &be) || be.Reason != "loopback" {
		t.Fatalf("dial = %v, want a loopback refusal", err)
	}
	// The Control hook itself refuses too, whatever the caller checked.
	if err := g.control("public.example.com")("tcp", "127.0.0.1:80", nil); !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("control = %v", err)
	}
}

type resolverFunc func(host string) []netip.Addr

func (f resolverFunc) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f(host), nil
}

func TestHostGate(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	opened := 0
	g := newHostGate(&Config{PerHostConcurrency: 2, BreakerThreshold: 3, BreakerCooldown: 10 * time.Second,
		HostRetryDelay: time.Second}, func(string, bool) { opened++ })
	g.now = func() time.Time { return now }

	// Per-host bound, other hosts unaffected.
	ok1, _, _ := g.acquire("a")
	ok2, _, _ := g.acquire("a")
	ok3, wait, reason := g.acquire("a")
	okB, _, _ := g.acquire("b")
	if !ok1 || !ok2 || ok3 || reason != deferHostBusy || wait != time.Second || !okB {
		t.Fatalf("acquire: %v %v %v(%s %s) b:%v", ok1, ok2, ok3, reason, wait, okB)
	}
	g.release("a", false, true, false)
	g.release("a", false, true, false)
	g.release("b", false, true, false)

	// Three consecutive failures open the breaker.
	for range 3 {
		if ok, _, _ := g.acquire("a"); !ok {
			t.Fatal("closed breaker refused")
		}
		g.release("a", false, false, true)
	}
	if !g.open("a") || opened != 1 {
		t.Fatalf("breaker open %v, opened %d", g.open("a"), opened)
	}
	if ok, wait, reason := g.acquire("a"); ok || reason != deferBreakerOpen || wait != 10*time.Second {
		t.Fatalf("open breaker: %v %s %s", ok, reason, wait)
	}
	// After the cooldown one probe goes; others wait for it.
	now = now.Add(10 * time.Second)
	if ok, _, reason := g.acquire("a"); !ok || reason != grantProbe {
		t.Fatalf("half-open breaker refused the probe (%v %s)", ok, reason)
	}
	if ok, _, reason := g.acquire("a"); ok || reason != deferBreakerOpen {
		t.Fatal("half-open breaker let a second request through")
	}
	// A failed probe opens it again; a successful one closes it.
	g.release("a", true, false, true)
	if !g.open("a") || opened != 2 {
		t.Fatal("failed probe did not reopen the breaker")
	}
	now = now.Add(10 * time.Second)
	if ok, _, _ := g.acquire("a"); !ok {
		t.Fatal("probe refused")
	}
	g.release("a", true, true, false)
	if g.open("a") {
		t.Fatal("successful probe did not close the breaker")
	}
	if ok1, _, _ := g.acquire("a"); !ok1 {
		t.Fatal("closed breaker refused")
	}
	g.release("a", false, true, false)
	if len(g.hosts) != 0 {
		t.Errorf("idle healthy hosts kept: %d", len(g.hosts))
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"junk", 0},
		{"-5", 0},
		{"0", time.Second},
		{"30", 30 * time.Second},
		{"999999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.v, now, time.Second, 24*time.Hour); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	d := &Dispatcher{cfg: Config{Schedule: []time.Duration{0, time.Minute, time.Hour}, Jitter: -1}}
	now := time.Unix(5000, 0)
	fail := &result{class: result5xx, statusCode: 500}
	tests := []struct {
		name string
		del  linkflow.Delivery
		r    *result
		want decision
	}{
		{"2xx", linkflow.Delivery{Step: 0, Trigger: "initial"}, &result{class: result2xx}, decision{status: "succeeded"}},
		{"410", linkflow.Delivery{Step: 1, Trigger: "retry"}, &result{class: resultGone}, decision{status: "gone", step: 1}},
		{"first failure", linkflow.Delivery{Step: 0, Trigger: "initial"}, fail,
			decision{status: "pending", step: 1, nextAt: now.Add(time.Minute), trigger: "retry"}},
		{"second failure", linkflow.Delivery{Step: 1, Trigger: "retry"}, fail,
			decision{status: "pending", step: 2, nextAt: now.Add(time.Hour), trigger: "retry"}},
		{"exhausted", linkflow.Delivery{Step: 2, Trigger: "retry"}, fail, decision{status: "failed", step: 3}},
		{"a longer retry-after wins", linkflow.Delivery{Step: 0, Trigger: "initial"}, &result{class: result429, retryAfter: 2 * time.Minute},
			decision{status: "pending", step: 1, nextAt: now.Add(2 * time.Minute), trigger: "retry"}},
		// A receiver asking for a second would otherwise use up the
		// schedule in seconds.
		{"a shorter retry-after does not", linkflow.Delivery{Step: 0, Trigger: "initial"}, &result{class: result429, retryAfter: time.Second},
			decision{status: "pending", step: 1, nextAt: now.Add(time.Minute), trigger: "retry"}},
		{"held back by the breaker too long", linkflow.Delivery{Step: 1, Trigger: "retry"}, &result{class: resultHostDown},
			decision{status: "failed", step: 1}},
		{"a redelivery held back too long", linkflow.Delivery{Step: 3, Trigger: "manual", Once: true, OnceFrom: "succeeded"},
			&result{class: resultHostDown}, decision{status: "succeeded", step: 3}},
		{"a redelivery whose secret could not be read", linkflow.Delivery{Step: 3, Trigger: "manual", Once: true, OnceFrom: "succeeded"},
			&result{class: resultNoSecret}, decision{status: "succeeded", step: 3}},
		{"a secret that could not be read", linkflow.Delivery{Step: 1, Trigger: "retry"}, &result{class: resultNoSecret},
			decision{status: "failed", step: 1}},
		{"manual while retrying keeps its step", linkflow.Delivery{Step: 1, Trigger: "manual"}, fail,
			decision{status: "pending", step: 1, nextAt: now.Add(time.Minute), trigger: "retry"}},
		{"replay of a failed one fails again", linkflow.Delivery{Step: 3, Trigger: "replay", Once: true, OnceFrom: "failed"}, fail,
			decision{status: "failed", step: 3}},
		{"redelivery of a delivered one fails", linkflow.Delivery{Step: 1, Trigger: "manual", Once: true, OnceFrom: "succeeded"}, fail,
			decision{status: "succeeded", step: 1}},
		{"replay succeeds", linkflow.Delivery{Step: 3, Trigger: "replay", Once: true, OnceFrom: "failed"}, &result{class: result2xx},
			decision{status: "succeeded", step: 3}},
	}
	for _, tt := range tests {
		if got := d.decide(&tt.del, tt.r, now); got != tt.want {
			t.Errorf("%s: decide = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
