package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/teststack"
)

// Allowed origins are checked when they are set, never wildcards or paths.
func TestAllowedOriginsRefused(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	ctx := context.Background()
	for _, bad := range []string{"*", "https://*.example.com", "https://app.example.com/", "http://app.example.com",
		"https://app.example.com 'unsafe-inline'", "https://app.example.com; script-src *", "null", "https://app.example.com?x"} {
		err := s.Store.UpdateOrg(ctx, s.OrgID, linkflow.OrgUpdate{AllowedOrigins: &[]string{"https://ok.example", bad}})
		if !errors.Is(err, linkflow.ErrInvalidOrigin) {
			t.Errorf("allowed origin %q: %v", bad, err)
		}
	}
	if err := s.Store.UpdateOrg(ctx, s.OrgID, linkflow.OrgUpdate{AllowedOrigins: &[]string{"HTTPS://App.Example.com:443", "https://app.example.com"}}); err != nil {
		t.Fatal(err)
	}
	o, err := s.Store.Org(ctx, s.OrgID)
	if err != nil || len(o.AllowedOrigins) != 1 || o.AllowedOrigins[0] != "https://app.example.com" {
		t.Fatalf("allowed origins %q, %v", o.AllowedOrigins, err)
	}
}

var (
	frameAncestorsRE = regexp.MustCompile(`frame-ancestors ([^;]+);`)
	scriptConfigRE   = regexp.MustCompile(`var cfg = (\{[^\n]*\});`)
)

func frameAncestors(p pageResp) string {
	m := frameAncestorsRE.FindStringSubmatch(p.header.Get("Content-Security-Policy"))
	if m == nil {
		return ""
	}
	return m[1]
}

func scriptConfig(p pageResp) string {
	m := scriptConfigRE.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

// The hosted page may be framed by the organization's allowed origins only,
// and talks only to the one the drop-in named when it is allowed.
func TestHostedPageEmbedding(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	prod := newAPIStack(t, func(c *api.Config) { c.Dev = false })
	ctx := context.Background()
	const app, other, local = "https://app.example.com", "https://other.example.com", "http://localhost:3000"
	for _, st := range []*teststack.Stack{s, prod} {
		if err := st.Store.UpdateOrg(ctx, st.OrgID, linkflow.OrgUpdate{AllowedOrigins: &[]string{app, other, local}}); err != nil {
			t.Fatal(err)
		}
	}
	pagePath := func(l linkJSON, origin string) string {
		p := "/link/" + l.str("linkId") + "?code=" + url.QueryEscape(l.str("claimCode"))
		if origin != "" {
			p += "&origin=" + url.QueryEscape(origin)
		}
		return p
	}
	l := newLink(t, s, s.APIKey, map[string]any{"returnUrl": "https://app.example.com/done"})

	// Not embedded: framed by the allowed origins (dev: http on localhost
	// too), but the page talks to no one.
	p := getPage(t, s, pagePath(l, ""))
	if fa := frameAncestors(p); fa != app+" "+other+" "+local || p.header.Get("X-Frame-Options") != "" {
		t.Fatalf("frame-ancestors %q, X-Frame-Options %q", fa, p.header.Get("X-Frame-Options"))
	}
	if strings.Contains(scriptConfig(p), "embed") || strings.Contains(p.body, `name="origin"`) || strings.Contains(p.body, `class="embed"`) {
		t.Fatalf("a page opened without ?origin= is embedded: %s", scriptConfig(p))
	}
	// Embedded by an allowed origin (named in any case): it says so to the
	// script, keeps the origin through its forms, and tells no secret.
	p = getPage(t, s, pagePath(l, "https://APP.example.com"))
	cfg := scriptConfig(p)
	if !strings.Contains(cfg, `"embed":"https://app.example.com"`) || !strings.Contains(cfg, `"linkId":"`+l.str("linkId")+`"`) ||
		!strings.Contains(cfg, `"status":"pending"`) || !strings.Contains(cfg, `"stage":"opened"`) {
		t.Fatalf("script config %s", cfg)
	}
	if !strings.Contains(p.body, `<input type="hidden" name="origin" value="https://app.example.com">`) || frameAncestors(p) != app+" "+other+" "+local {
		t.Fatalf("embedded login page:\n%s", p.body)
	}
	// An origin that is not allowed, or not an origin: not embedded.
	for _, o := range []string{"https://evil.example", "https://app.example.com.evil.example", "*", "https://app.example.com/x", "null"} {
		if p := getPage(t, s, pagePath(l, o)); pageState(p) != "login" || strings.Contains(scriptConfig(p), "embed") || strings.Contains(p.body, `name="origin"`) {
			t.Fatalf("?origin=%s: state %q, script config %s", o, pageState(p), scriptConfig(p))
		}
	}
	// A production API ignores the http origin.
	pl := newLink(t, prod, prod.APIKey, nil)
	if p := getPage(t, prod, pagePath(pl, local)); frameAncestors(p) != app+" "+other || strings.Contains(scriptConfig(p), "embed") {
		t.Fatalf("production: frame-ancestors %q, script config %s", frameAncestors(p), scriptConfig(p))
	}
	// An organization without allowed origins: never framed.
	_, otherKey, _ := s.NewOrg(t, "No origins")
	ol := newLink(t, s, otherKey, nil)
	if p := getPage(t, s, pagePath(ol, app)); frameAncestors(p) != "'none'" || p.header.Get("X-Frame-Options") != "DENY" || strings.Contains(scriptConfig(p), "embed") {
		t.Fatalf("no allowed origins: frame-ancestors %q, X-Frame-Options %q, script config %s", frameAncestors(p), p.header.Get("X-Frame-Options"), scriptConfig(p))
	}

	// The login keeps the origin; the outcome does not redirect to the
	// return URL when embedded (the drop-in closes instead), and says how it
	// ended.
	form := url.Values{"code": {l.str("claimCode")}, "username": {"user_good"}, "password": {"pass_good"}, "origin": {app}}
	r := postPage(t, s, "/link/"+l.str("linkId")+"/login", form, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != pagePath(l, app) {
		t.Fatalf("login: %d, Location %q", r.status, r.header.Get("Location"))
	}
	waitLink(t, s, s.APIKey, l.str("linkId"), "succeeded")
	p = getPage(t, s, pagePath(l, app))
	cfg = scriptConfig(p)
	if pageState(p) != "succeeded" || strings.Contains(p.body, "app.example.com/done") || strings.Contains(cfg, "redirect") ||
		!strings.Contains(cfg, `"stage":"finished"`) || !strings.Contains(cfg, `"status":"succeeded"`) || !strings.Contains(p.body, `id="close"`) {
		t.Fatalf("embedded outcome: %s\n%s", cfg, p.body)
	}
	// Not embedded, the same page redirects as before.
	if p := getPage(t, s, pagePath(l, "")); !strings.Contains(p.body, "app.example.com/done") {
		t.Fatal("the page no longer redirects to the return URL")
	}
}
