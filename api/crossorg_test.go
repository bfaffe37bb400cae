package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
)

// notOrgScoped lists routes with path parameters that do not name an
// organization's record, with the reason. Every other route with a
// parameter is checked with another organization's key.
var notOrgScoped = map[string]string{
	"POST /v1/links/{linkId}/claim":                       "authenticated by the claim code, not by an organization's key",
	"GET /v1/links/{linkId}/session":                      "authenticated by the claim code, not by an organization's key",
	"POST /v1/links/{linkId}/input":                       "authenticated by the claim code, not by an organization's key",
	"OPTIONS /v1/links/{linkId}/claim":                    "CORS preflight: no credentials, no data",
	"OPTIONS /v1/links/{linkId}/session":                  "CORS preflight: no credentials, no data",
	"OPTIONS /v1/links/{linkId}/input":                    "CORS preflight: no credentials, no data",
	"GET /link/{linkId}":                                  "the hosted page: authenticated by the claim code",
	"POST /link/{linkId}/login":                           "the hosted page: authenticated by the claim code",
	"POST /link/{linkId}/mfa":                             "the hosted page: authenticated by the claim code",
	"POST /link/{linkId}/decline":                         "the hosted page: authenticated by the claim code",
	"POST /v1/links/{linkId}/decline":                     "authenticated by the claim code, not by an organization's key",
	"OPTIONS /v1/links/{linkId}/decline":                  "CORS preflight: no credentials, no data",
	"GET /v1/sandbox/accounts/{integrationId}/{username}": "dev only: sandbox accounts belong to no organization",
	"GET /sdk/{version}/link.js":                          "the web drop-in's public script: no credentials, no data",
}

// crossOrgBodies are request bodies for routes that validate a body before
// they look the record up; the default is {}.
var crossOrgBodies = map[string]any{}

// TestCrossOrganization: another organization's id answers 404, always, on
// every route that takes one; and lists never show another organization's
// records. New routes are covered by their parameters' names: a parameter
// without a fixture value fails the test.
func TestCrossOrganization(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	_, otherKey, _ := s.NewOrg(t, "Other organization")

	// Org A's records: a link that succeeded (so it has a connection, an
	// event and a webhook delivery).
	hooks := make(chan string, 4)
	l := newLink(t, s, s.APIKey, map[string]any{"webhookUrl": newEventSink(t, hooks), "externalUserId": "shared-user", "debug": true})
	linkID := l.str("linkId")
	wantStatus(t, claimLink(t, s, linkID, l.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
	done := waitLink(t, s, s.APIKey, linkID, "succeeded")
	connID := done.str("connectionId")
	select {
	case <-hooks:
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook for org A's link")
	}
	testenv.Eventually(t, 10*time.Second, "org A's delivery to be recorded", func() bool {
		r := s.Do(t, http.MethodGet, "/v1/links/"+linkID+"/deliveries", s.APIKey, nil)
		return r.StatusCode == http.StatusOK && strings.Contains(string(r.Body), `"succeeded"`)
	})
	fixture := map[string]string{
		"linkId":       linkID,
		"connectionId": connID,
		"id":           connID, // connections may name their id {id}
		"eventId":      linkflow.LinkEventID(linkID),
	}
	secret := []string{linkID, connID, linkflow.LinkEventID(linkID)}

	var gets []string
	for _, route := range s.API.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if !strings.Contains(path, "{") {
			// A list: another organization's key sees none of A's records.
			if method != http.MethodGet || path == "/openapi.yaml" || path == "/v1/providers" || path == "/healthz" || path == "/readyz" {
				continue
			}
			r := s.Do(t, method, path, otherKey, nil)
			if r.StatusCode != http.StatusOK {
				t.Errorf("%s with another organization's key: %d %s", route, r.StatusCode, r.Body)
			}
			for _, id := range secret {
				if strings.Contains(string(r.Body), id) {
					t.Errorf("%s shows another organization's %s", route, id)
				}
			}
			continue
		}
		if reason, ok := notOrgScoped[route]; ok {
			if reason == "" {
				t.Errorf("%s is exempt without a reason", route)
			}
			continue
		}
		missing := false
		filled := pathParam.ReplaceAllStringFunc(path, func(p string) string {
			name := strings.Trim(p, "{}")
			v, ok := fixture[name]
			if !ok {
				t.Errorf("%s: no fixture for {%s}: add one to TestCrossOrganization (or list the route in notOrgScoped with a reason)", route, name)
				missing = true
			}
			return v
		})
		if missing {
			continue
		}
		var body any
		if method != http.MethodGet && method != http.MethodDelete {
			body = map[string]any{}
			if b, ok := crossOrgBodies[route]; ok {
				body = b
			}
		}
		r := s.Do(t, method, filled, otherKey, body)
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("%s with another organization's key: %d %s, want 404", route, r.StatusCode, r.Body)
			continue
		}
		wantError(t, r, http.StatusNotFound, "NOT_FOUND")
		if method == http.MethodGet {
			gets = append(gets, filled)
		}
	}
	// The ids are real: their own organization reads them.
	for _, p := range gets {
		if r := s.Do(t, http.MethodGet, p, s.APIKey, nil); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s with its organization's key: %d %s", p, r.StatusCode, r.Body)
		}
	}
	// Org A's link was not changed by org B's calls (cancel, redeliver...).
	if got := fetchLink(t, s, s.APIKey, linkID); got.str("status") != "succeeded" {
		t.Fatalf("org A's link is %v after org B's calls", got["status"])
	}
	// Filters do not cross organizations either.
	r := s.Do(t, http.MethodGet, "/v1/links?externalUserId=shared-user", otherKey, nil)
	if strings.Contains(string(r.Body), linkID) {
		t.Fatal("another organization's filtered list shows the link")
	}
}
