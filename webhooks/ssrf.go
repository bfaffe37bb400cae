package webhooks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrBlockedAddress matches a *BlockedAddressError with errors.Is.
var ErrBlockedAddress = errors.New("blocked address")

// BlockedAddressError is the SSRF guard refusing to connect to an address
// that is not public (loopback, private, link-local, metadata...).
type BlockedAddressError struct {
	Addr   netip.Addr
	Reason string
}

func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s address (only public addresses are allowed)", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrBlockedAddress) match.
func (e *BlockedAddressError) Is(target error) bool { return target == ErrBlockedAddress }

type blockedRange struct {
	prefix netip.Prefix
	reason string
}

func ranges(reason string, cidrs ...string) []blockedRange {
	out := make([]blockedRange, len(cidrs))
	for i, c := range cidrs {
		out[i] = blockedRange{netip.MustParsePrefix(c), reason}
	}
	return out
}

// blocked lists the address ranges no webhook may reach, most specific
// first (the cloud metadata addresses sit inside link-local and unique-local
// ranges).
var blocked = concat(
	ranges("cloud metadata", "169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32"),
	ranges("unspecified", "0.0.0.0/8", "::/128"),
	ranges("loopback", "127.0.0.0/8", "::1/128"),
	ranges("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
	ranges("carrier-grade NAT", "100.64.0.0/10"),
	ranges("link-local", "169.254.0.0/16", "fe80::/10"),
	ranges("unique-local", "fc00::/7", "fec0::/10"),
	ranges("multicast", "224.0.0.0/4", "ff00::/8"),
	ranges("reserved", "240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15", "192.0.2.0/24",
		"198.51.100.0/24", "203.0.113.0/24", "100::/64", "2001:db8::/32", "2001::/32",
		"64:ff9b:1::/48"),
)

func concat(parts ...[]blockedRange) []blockedRange {
	var out []blockedRange
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	v4Compa = netip.MustParsePrefix("::/96")
)

// blockedReason says why ip must not be dialled, or "" when it is public.
// IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4)
// are judged by the address they embed.
func blockedReason(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap()
	for _, r := range blocked {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	if ip.Is6() {
		b := ip.As16()
		var v4 netip.Addr
		switch {
		case nat64.Contains(ip), v4Compa.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case sixTo4.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if v4.IsValid() {
			if reason := blockedReason(v4); reason != "" {
				return reason + " (embedded in IPv6)"
			}
		}
	}
	return ""
}

// guard dials webhook targets. Outside dev it refuses addresses that are not
// public, checked on the address actually dialled (net.Dialer.Control), so a
// name that resolves to a public address for a check and to a private one
// for the connection (DNS rebinding) is still refused.
//
// The operator's allowlist lets non-public addresses through, and only
// addresses: a CIDR or address entry exempts the addresses it covers. Host
// name entries never skip the address check; they narrow the CIDR
// exemptions instead: when the allowlist names hosts, only targets with one
// of those names may reach an exempted address (any other name that
// resolves there, or an address literal, is refused as usual). The
// allowlist applies to every organization.
type guard struct {
	allowPrivate bool
	nets         []netip.Prefix
	hosts        []string // exact names
	suffixes     []string // ".example.com" for "*.example.com"
	resolver     Resolver
	timeout      time.Duration
}

func newGuard(c *Config) (*guard, error) {
	g := &guard{allowPrivate: c.AllowPrivate, resolver: c.Resolver, timeout: c.ConnectTimeout}
	for _, a := range c.Allowlist {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" {
			continue
		}
		if p, err := netip.ParsePrefix(a); err == nil {
			g.nets = append(g.nets, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			g.nets = append(g.nets, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		if strings.ContainsAny(a, "/ :") {
			return nil, fmt.Errorf("webhooks: allowlist entry %q is neither a CIDR, an address nor a host name", a)
		}
		if rest, ok := strings.CutPrefix(a, "*."); ok {
			g.suffixes = append(g.suffixes, "."+rest)
		} else {
			g.hosts = append(g.hosts, a)
		}
	}
	return g, nil
}

func (g *guard) hostAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range g.hosts {
		if host == h {
			return true
		}
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// control returns the dialler's check for a target host: it runs after the
// socket is created and before it connects, on the IP and port being
// dialled.
func (g *guard) control(host string) func(_, address string, _ syscall.RawConn) error {
	exempt := len(g.nets) > 0 && (len(g.hosts)+len(g.suffixes) == 0 || g.hostAllowed(host))
	return func(_, address string, _ syscall.RawConn) error {
		h, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("ssrf guard: %w", err)
		}
		ip, err := netip.ParseAddr(h)
		if err != nil {
			return fmt.Errorf("ssrf guard: dialled address %q is not an IP", h)
		}
		ip = ip.WithZone("").Unmap()
		if exempt {
			for _, p := range g.nets {
				if p.Contains(ip) {
					return nil
				}
			}
		}
		if reason := blockedReason(ip); reason != "" {
			return &BlockedAddressError{Addr: ip, Reason: reason}
		}
		return nil
	}
}

// dial resolves addr's host with the configured resolver and connects to
// its addresses in turn, each checked by control.
func (g *guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	d := &net.Dialer{}
	if !g.allowPrivate {
		d.Control = g.control(host)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		lookup := "ip"
		switch network {
		case "tcp4":
			lookup = "ip4"
		case "tcp6":
			lookup = "ip6"
		}
		if ips, err = g.resolver.LookupNetIP(ctx, lookup, host); err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	var first error
	for _, ip := range ips {
		// Checked here for a clear error, and again by control on the
		// address actually dialled.
		if d.Control != nil {
			if err := d.Control(network, net.JoinHostPort(ip.String(), port), nil); err != nil {
				first = cmp.Or(first, err)
				continue
			}
		}
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		first = cmp.Or(first, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// public reports whether addr, the remote address of a connection, is a
// public address: the only ones whose responses the delivery log keeps.
func public(addr net.Addr) bool {
	if addr == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(addr.String())
	return err == nil && blockedReason(ap.Addr()) == ""
}
