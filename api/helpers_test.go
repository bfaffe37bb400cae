package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/workflow"
)

// newAPIStack starts linkflow for one test. Rate limits are off unless mod
// turns them on: tests share one client address and run in parallel.
func newAPIStack(t *testing.T, mod func(*api.Config)) *teststack.Stack {
	t.Helper()
	return teststack.NewStack(t, teststack.StackOptions{Worker: func(c *workflow.Config) {
		// Cancel requests reach the worker over NATS at once; a short
		// heartbeat also reads them from Redis soon, which keeps tests
		// quick when a notice races the start of a session.
		c.Heartbeat = 200 * time.Millisecond
	}, API: func(c *api.Config) {
		c.KeyLimit, c.ClientLimit, c.ClaimGuessLimit, c.LoginFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit, api.NoLimit
		c.UserLoginFailureLimit, c.AddressLoginFailureLimit, c.AuthFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit
		c.OperatorFailureLimit = api.NoLimit
		c.RedirectDelay = 100 * time.Millisecond
		if mod != nil {
			mod(c)
		}
	}})
}

// apiError is the seed 000 error envelope.
type apiError struct {
	Meta struct {
		RequestID string `json:"request_id"`
	} `json:"meta"`
	Error struct {
		Code    string           `json:"code"`
		Message string           `json:"message"`
		Detail  string           `json:"detail"`
		Issues  []linkflow.Issue `json:"issues"`
	} `json:"error"`
}

// wantError checks r is an error envelope with status and code.
func wantError(t *testing.T, r *teststack.Response, status int, code string) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("%s %s: %d, body %s is not the error envelope", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.Body)
	}
	if r.StatusCode != status || e.Error.Code != code || e.Meta.RequestID == "" || e.Error.Message == "" {
		t.Fatalf("%s %s: %d %s, want %d %s with a request id and a message", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.Body, status, code)
	}
	return e
}

func wantStatus(t *testing.T, r *teststack.Response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: %d %s, want %d", r.Request.Method, r.Request.URL, r.StatusCode, r.Body, status)
	}
}

// linkJSON is a link as the API shows it, loosely.
type linkJSON map[string]any

func (l linkJSON) str(k string) string { s, _ := l[k].(string); return s }

func readOp() map[string]any { return map[string]any{"resource": "paymentMethod", "action": "read"} }

// newLink creates a link (tmobile, one read unless body says otherwise).
func newLink(t *testing.T, s *teststack.Stack, key string, body map[string]any) linkJSON {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["integrationId"]; !ok {
		body["integrationId"] = "tmobile"
	}
	if _, ok := body["operations"]; !ok {
		body["operations"] = []any{readOp()}
	}
	r := s.Do(t, http.MethodPost, "/v1/links", key, body)
	wantStatus(t, r, http.StatusCreated)
	var l linkJSON
	r.JSON(t, &l)
	return l
}

func fetchLink(t *testing.T, s *teststack.Stack, key, id string) linkJSON {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/v1/links/"+id, key, nil)
	wantStatus(t, r, http.StatusOK)
	var l linkJSON
	r.JSON(t, &l)
	return l
}

// waitLink waits until the link's status is one of want and returns it.
func waitLink(t *testing.T, s *teststack.Stack, key, id string, want ...string) linkJSON {
	t.Helper()
	var l linkJSON
	testenv.Eventually(t, 15*time.Second, "link "+id+" to become one of "+strings.Join(want, "|"), func() bool {
		l = fetchLink(t, s, key, id)
		for _, w := range want {
			if l.str("status") == w {
				return true
			}
		}
		return false
	})
	return l
}

func claimLink(t *testing.T, s *teststack.Stack, id, code, user, pw string) *teststack.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, "/v1/links/"+id+"/claim", "",
		map[string]any{"claimCode": code, "credentials": map[string]string{"username": user, "password": pw}})
}

// sessionJSON is GET /v1/links/{id}/session.
type sessionJSON struct {
	LinkID    string `json:"linkId"`
	Status    string `json:"status"`
	Challenge *struct {
		ID           string `json:"id"`
		Type         string `json:"type"`
		Message      string `json:"message"`
		ExpiresAt    int64  `json:"expiresAt"`
		AttemptsLeft int    `json:"attemptsLeft"`
		LastError    string `json:"lastError"`
	} `json:"challenge"`
	Error       *linkflow.LinkError `json:"error"`
	RedirectURL string              `json:"redirectUrl"`
}

func fetchSession(t *testing.T, s *teststack.Stack, id, code string) sessionJSON {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/v1/links/"+id+"/session?code="+code, "", nil)
	wantStatus(t, r, http.StatusOK)
	var v sessionJSON
	r.JSON(t, &v)
	return v
}

// newEventSink serves a webhook endpoint that sends each event's type to
// got; it returns its URL.
func newEventSink(t *testing.T, got chan<- string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string `json:"type"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		select {
		case got <- ev.Type:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook"
}

func keys(m map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}
