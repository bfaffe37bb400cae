package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/testenv"
)

// Every request is counted by the route it matched (never an id) and its
// status, and timed by route; a path no route serves is "unmatched", and a
// query string refused before routing still names its route.
func TestRequestMetricsByRoute(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s := newAPIStack(t, func(c *api.Config) { c.Metrics = api.NewMetrics(reg) })

	newLink(t, s, s.APIKey, map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}})
	wantStatus(t, s.Do(t, http.MethodGet, "/v1/links/lnk_00000000000000000000000000", s.APIKey, nil), http.StatusNotFound)
	wantStatus(t, s.Do(t, http.MethodGet, "/nowhere/lnk_1", s.APIKey, nil), http.StatusNotFound)
	wantStatus(t, s.Do(t, http.MethodGet, "/v1/links?"+strings.Repeat("a=1&", 40), s.APIKey, nil), http.StatusBadRequest)

	find := func(name string, labels ...string) *dto.Metric {
		t.Helper()
		series := testenv.Series(t, reg, name, labels...)
		if len(series) == 0 {
			t.Fatalf("no %s%v", name, labels)
		}
		return series[0]
	}
	for _, c := range [][2]string{
		{"POST /v1/links", "201"},
		{"GET /v1/links/{linkId}", "404"},
		{"unmatched", "404"},
		{"GET /v1/links", "400"},
	} {
		if n := find("linkflow_api_requests_total", "route", c[0], "code", c[1]).GetCounter().GetValue(); n != 1 {
			t.Errorf("%s %s counted %v times, want once", c[0], c[1], n)
		}
	}
	if n := find("linkflow_api_request_seconds", "route", "POST /v1/links").GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("POST /v1/links timed %d times, want once", n)
	}
	if n := find("linkflow_api_requests_in_flight").GetGauge().GetValue(); n != 0 {
		t.Errorf("%v requests in flight after all were answered", n)
	}
}
