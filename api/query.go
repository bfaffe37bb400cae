package api

import (
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/linkflow/linkflow"
)

// queryParams are the query parameters each route takes. Any other is
// refused, like an unknown body field, so a typo (?staus=failed) never
// silently does nothing; a route missing here takes none. The OpenAPI test
// checks this table against the document.
var queryParams = map[string][]string{
	"GET /v1/links":                                   {"status", "integrationId", "externalUserId", "limit", "cursor", "expand"},
	"GET /v1/links/{linkId}":                          {"expand"},
	"GET /v1/links/{linkId}/session":                  {"code"},
	"GET /v1/connections":                             {"externalUserId", "integrationId", "status", "limit", "cursor", "expand"},
	"GET /v1/connections/{connectionId}":              {"include_secrets", "refresh_policy", "expand"},
	"GET /v1/connections/{connectionId}/secret-reads": {"limit"},
	"GET /v1/webhooks/failed":                         {"limit", "cursor"},
	"GET /v1/events":                                  {"after", "limit"},
	// The hosted page is where end users land from messages and apps, which
	// append parameters of their own (utm_source, fbclid): it ignores
	// what it does not know rather than show an end user an error.
	"GET /link/{linkId}": {"code", "sent", "origin"},
}

// lenientQuery are routes that ignore unknown query parameters.
var lenientQuery = map[string]bool{"GET /link/{linkId}": true}

// QueryParams lists the query parameters each route takes, for the OpenAPI
// test.
func QueryParams() map[string][]string { return queryParams }

// checkParams wraps the handler of route pattern: a query parameter the
// route does not take is refused with 400, naming those it does take.
func (s *Server) checkParams(pattern string, h http.HandlerFunc) http.HandlerFunc {
	// A CORS preflight carries the query of the request it asks for.
	if lenientQuery[pattern] || strings.HasPrefix(pattern, http.MethodOptions+" ") {
		return h
	}
	known := queryParams[pattern]
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			var unknown []string
			for k := range r.URL.Query() {
				if !slices.Contains(known, k) {
					unknown = append(unknown, k)
				}
			}
			if len(unknown) > 0 {
				sort.Strings(unknown)
				takes := "takes no query parameters"
				if len(known) > 0 {
					takes = "takes only " + strings.Join(known, ", ")
				}
				e := linkflow.Errorf(linkflow.EBadRequest, "Unknown query parameter %s: %s %s.", quoteShort(unknown[0]), pattern, takes)
				for _, k := range unknown {
					e.Issues = append(e.Issues, linkflow.Issue{Path: quoteKey(k), Message: "is not a parameter of " + pattern + "; it " + takes})
				}
				s.writeError(w, r, e)
				return
			}
		}
		h(w, r)
	}
}
