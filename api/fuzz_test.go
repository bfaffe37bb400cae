package api

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/linkflow/linkflow"
)

// FuzzCheckJSON feeds the JSON body check arbitrary bytes. Properties: no
// panic; what it accepts is valid JSON that decodes, nests at most
// MaxJSONDepth levels and has no key twice in one object; every refusal is a
// 400 with the error envelope's code.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"a":1},"b":{"a":1}}`, `[[[[]]]]`, `{"a":`, `"x"`,
		strings.Repeat("[", 33) + strings.Repeat("]", 33), `{"\u0061":1,"a":2}`, `1 2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkJSON(b)
		if err != nil {
			if codeOf(err) != linkflow.EBadRequest {
				t.Fatalf("refused with %v, want BAD_REQUEST", err)
			}
			return
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			t.Fatalf("accepted %q, which does not decode", b)
		}
		if d := depth(v); d > MaxJSONDepth {
			t.Fatalf("accepted %q, nested %d deep", b, d)
		}
	})
}

func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

// FuzzReturnURL checks arbitrary return URLs and the redirect the hosted page
// would then make. Properties: no panic; an accepted URL is https, http only
// in dev, or a registered app scheme; its redirect (with linkId, status and
// verifier added) keeps that scheme and is one the page will follow.
func FuzzReturnURL(f *testing.F) {
	for _, u := range []string{"https://app.example.com/done?x=1", "myapp://callback", "intent://x#Intent;end",
		"javascript:alert(1)", "HTTPS://A", "http://localhost:3000", "feed:javascript:x", "com.example.app:/oauth", "//x"} {
		f.Add(u, false)
	}
	schemes := func() []string { return []string{"myapp", "com.example.app"} }
	f.Fuzz(func(t *testing.T, raw string, dev bool) {
		s := &Server{cfg: Config{Dev: dev}}
		if msg := s.checkReturnURL(raw, schemes); msg != "" {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse", raw)
		}
		scheme := strings.ToLower(u.Scheme)
		if !(scheme == "https" || (dev && scheme == "http") || slices.Contains(schemes(), scheme)) {
			t.Fatalf("accepted %q (scheme %q, dev %v)", raw, scheme, dev)
		}
		l := &linkflow.Link{ID: "link_1", ReturnURL: raw, Verifier: "v"}
		red := redirectURL(l, linkflow.StatusSucceeded)
		if red == "" {
			return // a URL the redirect cannot rebuild: the page shows no redirect
		}
		got, web, ok := safeRedirect(red)
		if !ok || got != red || web != (scheme == "https" || scheme == "http") {
			t.Fatalf("redirect %q of %q: ok %v web %v", red, raw, ok, web)
		}
		if ru, err := url.Parse(red); err != nil || strings.ToLower(ru.Scheme) != scheme {
			t.Fatalf("redirect %q changed the scheme of %q", red, raw)
		}
	})
}

// FuzzClientAddr reads arbitrary peers and X-Forwarded-For headers.
// Properties: no panic; a peer that is not a trusted proxy is the client
// whatever X-Forwarded-For says; the address is never one of the trusted
// proxies unless every hop is one.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:443", "198.51.100.7, 10.0.0.2")
	f.Add("192.0.2.1:1", "198.51.100.7")
	f.Add("[::1]:80", "garbage, 2001:db8::1")
	f.Add("not an address", "")
	proxies, _ := parseCIDRs([]string{"10.0.0.0/8", "::1"})
	s := &Server{trustedProxies: proxies}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := &http.Request{RemoteAddr: peer, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := s.clientAddr(r)
		p := parseAddr(peer)
		if !s.trusted(p) && got != p {
			t.Fatalf("untrusted peer %q, X-Forwarded-For %q: client %v", peer, xff, got)
		}
		if got.IsValid() && got != p && !got.Is4() && !got.Is6() {
			t.Fatalf("client %v", got)
		}
		_ = addrBucket("ip", got) // names a bucket for any address
		if got.IsValid() {
			if _, err := netip.ParseAddr(got.String()); err != nil {
				t.Fatalf("client %v does not print as an address", got)
			}
		}
	})
}

// FuzzScopes parses arbitrary scope parameters. Properties: no panic; what
// it returns are known scopes, each once; what it refuses is a 400.
func FuzzScopes(f *testing.F) {
	f.Add("links:read links:write")
	f.Add("links:read,links:read,,connections:secrets")
	f.Add("admin")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseScopes(s)
		if err != nil {
			if codeOf(err) != linkflow.EBadRequest {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, sc := range got {
			if !slices.Contains(linkflow.AllScopes, sc) || seen[sc] {
				t.Fatalf("parseScopes(%q) = %v", s, got)
			}
			seen[sc] = true
		}
	})
}
