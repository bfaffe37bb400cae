package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/teststack"
)

// slow is a limit that does not refill during a test.
func slow(burst int) api.Limit { return api.Limit{Rate: 0.01, Burst: burst} }

// doFrom sends a request as if through a proxy for client addr.
func doFrom(t *testing.T, s *teststack.Stack, method, path, key, xff string) *teststack.Response {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return &teststack.Response{Response: resp}
}

func wantRate(t *testing.T, r *teststack.Response, limit, remaining int) {
	t.Helper()
	h := r.Header
	if h.Get("RateLimit-Limit") != strconv.Itoa(limit) || h.Get("RateLimit-Remaining") != strconv.Itoa(remaining) || h.Get("RateLimit-Reset") == "" {
		t.Fatalf("%s: RateLimit-Limit %q -Remaining %q -Reset %q, want %d and %d", r.Request.URL.Path,
			h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), limit, remaining)
	}
}

func want429(t *testing.T, r *teststack.Response) {
	t.Helper()
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s: %d, want 429", r.Request.URL.Path, r.StatusCode)
	}
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if r.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("RateLimit-Remaining %q on a 429", r.Header.Get("RateLimit-Remaining"))
	}
}

func TestKeyRateLimit(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) { c.KeyLimit = slow(3) })
	for i := range 3 {
		r := s.Do(t, http.MethodGet, "/v1/links", s.APIKey, nil)
		wantStatus(t, r, http.StatusOK)
		wantRate(t, r, 3, 2-i)
	}
	r := s.Do(t, http.MethodGet, "/v1/links", s.APIKey, nil)
	wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_REQUESTS")
	want429(t, r)
	// Every endpoint of the key shares the bucket; so does a second API
	// process over the same Redis.
	want429(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{}))
	other := s.NewAPI(t, nil, func(c *api.Config) { c.KeyLimit = slow(3) })
	req := httptest.NewRequest(http.MethodGet, "/v1/links", nil)
	req.Header.Set("Authorization", "Bearer "+s.APIKey)
	rec := httptest.NewRecorder()
	other.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("the other API process: %d", rec.Code)
	}
	// Another key has its own bucket.
	_, key2, _ := s.NewOrg(t, "other")
	wantRate(t, s.Do(t, http.MethodGet, "/v1/links", key2, nil), 3, 2)
}

func TestClientRateLimit(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) {
		c.ClientLimit = slow(3)
		c.TrustedProxies = []string{"127.0.0.1/32", "10.0.0.0/8"}
	})
	l := newLink(t, s, s.APIKey, nil)
	session := "/v1/links/" + l.str("linkId") + "/session?code=" + l.str("claimCode")
	page := "/link/" + l.str("linkId") + "?code=" + l.str("claimCode")

	// Behind a trusted proxy, the client is the last untrusted hop.
	for i := range 2 {
		r := doFrom(t, s, http.MethodGet, session, "", "198.51.100.1, 203.0.113.7")
		wantStatus(t, r, http.StatusOK)
		wantRate(t, r, 3, 2-i)
	}
	// The hosted page counts against the same address.
	r := doFrom(t, s, http.MethodGet, page, "", "203.0.113.7, 10.1.2.3")
	wantStatus(t, r, http.StatusOK)
	wantRate(t, r, 3, 0)
	want429(t, doFrom(t, s, http.MethodGet, session, "", "203.0.113.7"))
	r = doFrom(t, s, http.MethodGet, page, "", "203.0.113.7")
	want429(t, r)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the hosted page's 429 is %s", r.Header.Get("Content-Type"))
	}
	want429(t, doFrom(t, s, http.MethodPost, "/v1/links/"+l.str("linkId")+"/input", "", "203.0.113.7"))
	// Another address, and another IPv6 /64, have their own buckets; one
	// /64 is one bucket.
	wantStatus(t, doFrom(t, s, http.MethodGet, session, "", "203.0.113.8"), http.StatusOK)
	for range 3 {
		wantStatus(t, doFrom(t, s, http.MethodGet, session, "", "2001:db8:1:2::1"), http.StatusOK)
	}
	want429(t, doFrom(t, s, http.MethodGet, session, "", "2001:db8:1:2:ffff::9"))
	wantStatus(t, doFrom(t, s, http.MethodGet, session, "", "2001:db8:1:3::1"), http.StatusOK)
	// The customer API is not limited per address.
	wantStatus(t, doFrom(t, s, http.MethodGet, "/v1/links", s.APIKey, "203.0.113.7"), http.StatusOK)
}

func TestUntrustedForwardedFor(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) { c.ClientLimit = slow(2) })
	l := newLink(t, s, s.APIKey, nil)
	session := "/v1/links/" + l.str("linkId") + "/session?code=" + l.str("claimCode")
	// X-Forwarded-For from a peer that is not a trusted proxy is ignored:
	// a client cannot pick a fresh bucket per request.
	wantStatus(t, doFrom(t, s, http.MethodGet, session, "", "203.0.113.1"), http.StatusOK)
	wantStatus(t, doFrom(t, s, http.MethodGet, session, "", "203.0.113.2"), http.StatusOK)
	want429(t, doFrom(t, s, http.MethodGet, session, "", "203.0.113.3"))
}

func TestClaimGuessLimit(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) { c.ClaimGuessLimit = slow(2) })
	// Successful claims do not count: many end users share addresses.
	for range 3 {
		l := newLink(t, s, s.APIKey, nil)
		wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
	}
	// Wrong codes and unknown links do, across links.
	a, b := newLink(t, s, s.APIKey, nil), newLink(t, s, s.APIKey, nil)
	wantError(t, claimLink(t, s, a.str("linkId"), "clm_guess", "u", "p"), http.StatusNotFound, "NOT_FOUND")
	wantError(t, claimLink(t, s, "link_unknown", "clm_guess", "u", "p"), http.StatusNotFound, "NOT_FOUND")
	r := claimLink(t, s, b.str("linkId"), b.str("claimCode"), "user_good", "pass_good")
	wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_REQUESTS")
	want429(t, r)
	// The hosted page's login form is the same claim.
	form := url.Values{"code": {b.str("claimCode")}, "username": {"user_good"}, "password": {"pass_good"}}
	resp, err := http.PostForm(s.URL+"/link/"+b.str("linkId")+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("hosted login after guessing: %d", resp.StatusCode)
	}
	// With a wrong code too: over the limit, the form tells no code from
	// another.
	form.Set("code", "clm_guess")
	resp, err = http.PostForm(s.URL+"/link/"+b.str("linkId")+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("hosted login with a wrong code after guessing: %d", resp.StatusCode)
	}
}

func TestRateLimitsOff(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil) // every limit NoLimit
	l := newLink(t, s, s.APIKey, nil)
	for _, r := range []*teststack.Response{
		s.Do(t, http.MethodGet, "/v1/links", s.APIKey, nil),
		s.Do(t, http.MethodGet, "/v1/links/"+l.str("linkId")+"/session?code="+l.str("claimCode"), "", nil),
	} {
		wantStatus(t, r, http.StatusOK)
		if h := r.Header.Get("RateLimit-Limit"); h != "" {
			t.Fatalf("%s: RateLimit-Limit %q with limits off", r.Request.URL.Path, h)
		}
	}
}
