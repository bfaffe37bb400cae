package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/linkflow/linkflow"
)

// FuzzCheckJSON feeds the JSON body check arbitrary bytes. Properties: no
// panic; it answers as checkJSONTokens, the check it replaced, does (the same
// error, or none); what it accepts is valid JSON that decodes (numbers as
// written: 1e400 is valid JSON), nests at most
// MaxJSONDepth levels and has no key twice in one object; every refusal is a
// 400 with the error envelope's code.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"a":1},"b":{"a":1}}`, `[[[[]]]]`, `{"a":`, `"x"`,
		strings.Repeat("[", 33) + strings.Repeat("]", 33), `{"\u0061":1,"a":2}`, `1 2`,
		`{"a":[{"a":1},"a",{"b":"a\"","a":{}}],"b":2}`, "{\"\xff\":1,\"\xfe\":2}", `{"é":1,"\u00e9":2}`,
		`{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1,"k17":1,"k18":1,"k1":1}`,
		strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32), strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkJSON(b)
		if want := checkJSONTokens(b); fmt.Sprint(err) != fmt.Sprint(want) {
			t.Fatalf("checkJSON(%q) = %v, the token check says %v", b, err, want)
		}
		if err != nil {
			if codeOf(err) != linkflow.EBadRequest {
				t.Fatalf("refused with %v, want BAD_REQUEST", err)
			}
			return
		}
		// Decoded with UseNumber: a number too large for a float64 (1e400)
		// is valid JSON, and the fields that take numbers check their range.
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			t.Fatalf("accepted %q, which does not decode", b)
		}
		if d := depth(v); d > MaxJSONDepth {
			t.Fatalf("accepted %q, nested %d deep", b, d)
		}
	})
}

// checkJSONTokens is the check checkJSON replaced, kept as the reference it
// must agree with: json.Valid, then a json.Decoder's tokens for the nesting
// and the keys.
func checkJSONTokens(b []byte) error {
	if !json.Valid(b) {
		return linkflow.Errorf(linkflow.EBadRequest, "The request body is not valid JSON.")
	}
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]bool
	}
	var stack []frame
	value := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return linkflow.Errorf(linkflow.EBadRequest, "The request body is not valid JSON.")
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) == MaxJSONDepth {
					return linkflow.Errorf(linkflow.EBadRequest, "The request body nests arrays and objects more than %d levels deep.", MaxJSONDepth)
				}
				stack = append(stack, frame{object: t == '{', wantKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				value()
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				f := &stack[n-1]
				if f.keys == nil {
					f.keys = map[string]bool{}
				}
				if f.keys[t] {
					return linkflow.Errorf(linkflow.EBadRequest, "The request body has the key %s twice in one object.", quoteShort(t))
				}
				f.keys[t], f.wantKey = true, false
				continue
			}
			value()
		default:
			value()
		}
	}
}

// BenchmarkCheckJSON is the body check of a create request like bench's.
func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(`{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"},` +
		`{"resource":"mobileBillingStatement","action":"read"}],"webhookUrl":"http://127.0.0.1:40000/webhook","externalUserId":"user-123"}`)
	for _, c := range []struct {
		name  string
		check func([]byte) error
	}{{"one pass", checkJSON}, {"tokens", checkJSONTokens}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.check(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
// in dev (neither with a user name), or a registered app scheme; its redirect (with linkId, status and
// verifier added) keeps that scheme and is one the page will follow.
func FuzzReturnURL(f *testing.F) {
	for _, u := range []string{"https://app.example.com/done?x=1", "myapp://callback", "intent://x#Intent;end",
		"javascript:alert(1)", "HTTPS://A", "http://localhost:3000", "feed:javascript:x", "com.example.app:/oauth", "//x",
		"https://app.example.com@evil.example/"} {
		f.Add(u, false)
	}
	registered := []string{"myapp", "com.example.app"}
	schemes := func() ([]string, error) { return registered, nil }
	f.Fuzz(func(t *testing.T, raw string, dev bool) {
		s := &Server{cfg: Config{Dev: dev}}
		if msg, err := s.checkReturnURL(raw, schemes); msg != "" || err != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse", raw)
		}
		scheme := strings.ToLower(u.Scheme)
		if !(scheme == "https" || (dev && scheme == "http") || slices.Contains(registered, scheme)) {
			t.Fatalf("accepted %q (scheme %q, dev %v)", raw, scheme, dev)
		}
		if (scheme == "https" || scheme == "http") && u.User != nil {
			t.Fatalf("accepted %q, whose host is not the one it seems", raw)
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
