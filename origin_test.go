package linkflow_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/linkflow/linkflow"
)

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://app.example.com", "https://app.example.com"},
		{"HTTPS://App.Example.COM", "https://app.example.com"},
		{"https://app.example.com:443", "https://app.example.com"},
		{"https://app.example.com:8443", "https://app.example.com:8443"},
		{"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
		{"https://203.0.113.9", "https://203.0.113.9"},
		{"https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"http://127.0.0.1:80", "http://127.0.0.1"},
		{"http://[::1]:5173", "http://[::1]:5173"},
	} {
		got, err := linkflow.ParseOrigin(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", "app.example.com", "//app.example.com", "https://", "https:app.example.com",
		"https://app.example.com/", "https://app.example.com/path", "https://app.example.com?x=1", "https://app.example.com?",
		"https://app.example.com#x", "https://app.example.com#", "https://user:pw@app.example.com", "https://user@app.example.com",
		"https://*.example.com", "*", "https://app.example.com:0", "https://app.example.com:65536", "https://app.example.com:",
		"https://app.example.com:08443", "https://app.example.com:x", "https://app..example.com", "https://app.example.com.",
		"https://-app.example.com", "https://bücher.example", "https://a_b.example.com", "https://[fe80::1%25en0]",
		"http://app.example.com", "http://192.168.1.2:3000", "http://localhost.evil.example", "ftp://app.example.com",
		"javascript://app.example.com", "data:text/html,x", "https://app.example.com 'unsafe-inline'",
		"https://app.example.com;script-src *", "https://a.example,https://b.example", "https://app.example.com\n",
	} {
		if got, err := linkflow.ParseOrigin(in); err == nil || !errors.Is(err, linkflow.ErrInvalidOrigin) {
			t.Errorf("ParseOrigin(%q) = %q, %v; want ErrInvalidOrigin", in, got, err)
		}
	}
	if !linkflow.DevOrigin("http://localhost:3000") || linkflow.DevOrigin("https://app.example.com") {
		t.Error("DevOrigin")
	}
}

func TestParseOrigins(t *testing.T) {
	t.Parallel()
	got, err := linkflow.ParseOrigins([]string{"https://b.example", "https://A.example", "https://b.example:443", "https://a.example"})
	if err != nil || len(got) != 2 || got[0] != "https://b.example" || got[1] != "https://a.example" {
		t.Fatalf("ParseOrigins: %q, %v", got, err)
	}
	if got, err := linkflow.ParseOrigins(nil); err != nil || len(got) != 0 {
		t.Fatalf("ParseOrigins(nil): %q, %v", got, err)
	}
	many := make([]string, linkflow.MaxAllowedOrigins+1)
	for i := range many {
		many[i] = "https://o" + string(rune('a'+i)) + ".example"
	}
	if _, err := linkflow.ParseOrigins(many); !errors.Is(err, linkflow.ErrInvalidOrigin) {
		t.Fatalf("%d origins: %v", len(many), err)
	}
	if _, err := linkflow.ParseOrigins(many[:linkflow.MaxAllowedOrigins]); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseOrigin: what ParseOrigin accepts is canonical (parsing it again
// gives it back), an http origin only on the local machine, and nothing in
// it can end a CSP directive or add a source to it.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "HTTPS://A.example:443", "http://localhost:3000", "http://[::1]:80",
		"https://[2001:db8::1]", "https://a.example/", "https://*.a.example", "https://a.example;x", "https://a.example:08"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := linkflow.ParseOrigin(s)
		if err != nil {
			if !errors.Is(err, linkflow.ErrInvalidOrigin) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if again, err := linkflow.ParseOrigin(o); err != nil || again != o {
			t.Fatalf("%q -> %q -> %q, %v", s, o, again, err)
		}
		if strings.ContainsAny(o, " ;,'\"*\r\n\t\\") || strings.Count(o, "/") != 2 {
			t.Fatalf("%q -> %q", s, o)
		}
		if linkflow.DevOrigin(o) && !strings.HasPrefix(o, "http://localhost") && !strings.HasPrefix(o, "http://127.0.0.1") && !strings.HasPrefix(o, "http://[::1]") {
			t.Fatalf("%q -> %q: http off the local machine", s, o)
		}
	})
}
