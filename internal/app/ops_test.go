package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkflow/linkflow/api"
)

// The metrics address's /readyz names the check that fails: while connect
// waits, what it waits for and why; then the process's own checks.
func TestReadyzNamesTheFailingCheck(t *testing.T) {
	t.Parallel()
	st := api.NewReadiness("redis", "nats", "streams")
	h := opsHandler(prometheus.NewRegistry(), st.Checks())
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	expect := func(wantCode int, want, notWant []string) {
		t.Helper()
		code, body := get("/readyz")
		if code != wantCode {
			t.Fatalf("/readyz: %d, want %d: %s", code, wantCode, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Fatalf("/readyz says no %q: %s", w, body)
			}
		}
		for _, w := range notWant {
			if strings.Contains(body, w) {
				t.Fatalf("/readyz says %q: %s", w, body)
			}
		}
	}

	st.Waiting("redis", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"))
	st.Waiting("nats", errors.New("nats: no servers available for connection"))
	expect(http.StatusServiceUnavailable, []string{`redis: waiting: dial tcp 127.0.0.1:6379: connect: connection refused`,
		`nats: waiting: nats: no servers available`, `streams: not checked yet`}, nil)
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while waiting: %d", code)
	}
	st.Waiting("redis", nil)
	st.Waiting("nats", nil)
	st.Waiting("streams", errors.New("ensure stream LINKFLOW_LINKS: context deadline exceeded"))
	expect(http.StatusServiceUnavailable, []string{`streams: waiting: ensure stream LINKFLOW_LINKS`}, []string{"redis:", "nats:"})

	ok := func(context.Context) error { return nil }
	st.Ready([]api.ReadyCheck{{Name: "redis", Check: ok},
		{Name: "nats", Check: func(context.Context) error { return errors.New("not connected (RECONNECTING)") }},
		{Name: "streams", Check: ok}})
	expect(http.StatusServiceUnavailable, []string{`nats: not connected (RECONNECTING)`}, []string{"redis:", "streams:"})
	st.Ready([]api.ReadyCheck{{Name: "redis", Check: ok}, {Name: "nats", Check: ok}, {Name: "streams", Check: ok}})
	expect(http.StatusOK, []string{`"redis":"ok"`, `"nats":"ok"`, `"streams":"ok"`}, nil)
}
