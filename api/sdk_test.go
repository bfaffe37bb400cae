package api_test

import (
	"crypto/sha512"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/linkflow/linkflow/sdk"
)

// The drop-in's script: the embedded file under three paths, cacheable
// (the exact version for a year), loadable from any origin for SRI.
func TestSDKScript(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	get := func(path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for path, cache := range map[string]string{
		"/sdk/link.js":                      "public, max-age=3600",
		"/sdk/" + sdk.Major() + "/link.js":  "public, max-age=3600",
		"/sdk/v" + sdk.Version + "/link.js": "public, max-age=31536000, immutable",
	} {
		resp, body := get(path, nil)
		h := resp.Header
		sum := sha512.Sum384(body)
		if resp.StatusCode != http.StatusOK || string(body) != sdk.LinkJS() || "sha384-"+base64.StdEncoding.EncodeToString(sum[:]) != sdk.Integrity() {
			t.Fatalf("GET %s: %d, %d bytes, not the embedded script", path, resp.StatusCode, len(body))
		}
		if h.Get("Content-Type") != "text/javascript; charset=utf-8" || h.Get("Cache-Control") != cache ||
			h.Get("Access-Control-Allow-Origin") != "*" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("ETag") == "" {
			t.Fatalf("GET %s: headers %v", path, h)
		}
		if again, _ := get(path, map[string]string{"If-None-Match": h.Get("ETag")}); again.StatusCode != http.StatusNotModified {
			t.Fatalf("GET %s with its ETag: %d", path, again.StatusCode)
		}
	}
	// A version served before stays served as it was: pages pin it with
	// its hash (1.0.0's, published in its docs).
	const v100 = "sha384-GHiwONpebOqNAxpDdQuM/0tKkdrCLICrMI9PxSHuYCbYRi/FCChNOYz87Jvem4Vl"
	resp, body := get("/sdk/v1.0.0/link.js", nil)
	sum := sha512.Sum384(body)
	if got := "sha384-" + base64.StdEncoding.EncodeToString(sum[:]); resp.StatusCode != http.StatusOK || got != v100 ||
		resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || resp.Header.Get("ETag") != `"`+v100[len("sha384-"):]+`"` {
		t.Fatalf("GET /sdk/v1.0.0/link.js: %d %s %v, want 1.0.0 as released", resp.StatusCode, got, resp.Header)
	}
	for _, path := range []string{"/sdk/v0.9.0/link.js", "/sdk/v2/link.js", "/sdk/latest/link.js", "/sdk/v1/other.js", "/sdk/v1.0/link.js", "/sdk/v..%2Flink/link.js"} {
		if resp, _ := get(path, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
