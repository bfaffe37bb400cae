package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/monitor"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/store"
)

// Issue 14: while Redis is down (stopped, or hanging), the customer API, the
// end user's endpoints and the hosted page answer at once with 503
// SERVICE_UNAVAILABLE and Retry-After, never 500 and never after a long
// wait, and /readyz names Redis. So too while Redis is full (maxmemory
// reached under noeviction), though it still answers reads.
func TestRedisUnavailableAnswers503(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"stopped", "hanging", "full"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			_, srv := testenv.RedisSingle(t)
			rdb, err := store.DialRedis(srv.URL, false)
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			// As internal/app sets up an API process's client.
			rdb.AddHook(store.UnavailableHook{Timeout: 500 * time.Millisecond})
			kr, err := store.ParseKeyring(store.GenerateKey("u1"))
			if err != nil {
				t.Fatal(err)
			}
			st, err := store.New(store.Config{Redis: rdb, Keyring: kr, NoAutoPipeline: true})
			if err != nil {
				t.Fatal(err)
			}
			org, err := st.CreateOrg(ctx, "", "down", "")
			if err != nil {
				t.Fatal(err)
			}
			key := store.NewAPIKey()
			if _, _, err := st.CreateAPIKey(ctx, org.ID, "down", key, nil); err != nil {
				t.Fatal(err)
			}
			c, err := st.CreateLink(ctx, linkflow.NewLink{OrgID: org.ID, IntegrationID: "tmobile", ExpiresIn: time.Hour,
				Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}}})
			if err != nil {
				t.Fatal(err)
			}
			ready := []api.ReadyCheck{{Name: "redis", Check: st.Ping}}
			srvAPI, err := api.New(api.Config{Store: st, Registry: operations.NewRegistry(nil), Messages: nopMessages{},
				Connections: nopConnections{}, Logger: zaptest.NewLogger(t), Ready: ready,
				OperatorKey: "operator-key-for-the-test", Operator: nopOperator{}})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srvAPI)
			defer hs.Close()

			switch fault {
			case "stopped":
				srv.Kill()
			case "full":
				// maxmemory reached under noeviction: Redis refuses writes,
				// the rate limits' included, and so every request a limit
				// or a failure budget guards (all of these: a guess could not
				// be counted).
				if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
					t.Fatal(err)
				}
			default:
				if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = syscall.Kill(srv.Pid(), syscall.SIGCONT) }()
			}
			claim := `{"claimCode":"` + c.Link.ClaimCode + `","credentials":{"username":"u","password":"p"}}`
			for _, rq := range []struct {
				method, path, key, body string
				html                    bool
			}{
				{"POST", "/v1/links", key, `{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}]}`, false},
				{"GET", "/v1/links/" + c.Link.ID, key, "", false},
				{"GET", "/v1/links", key, "", false},
				{"POST", "/v1/links/" + c.Link.ID + "/claim", "", claim, false},
				{"POST", "/v1/links/" + c.Link.ID + "/cancel", key, "", false},
				{"GET", "/v1/links/" + c.Link.ID + "/session?code=" + url.QueryEscape(c.Link.ClaimCode), "", "", false},
				{"GET", "/link/" + c.Link.ID + "?code=" + url.QueryEscape(c.Link.ClaimCode), "", "", true},
				{"POST", "/v1/auth/token", "", "grant_type=password&username=a%40example.com&password=guess", false},
				{"GET", "/ops/status", "not-the-operator-key", "", false},
				{"POST", "/ops/login", "", "key=not-the-operator-key", true},
				{"GET", "/ops", "not-the-operator-key", "", true},
			} {
				req, _ := http.NewRequest(rq.method, hs.URL+rq.path, strings.NewReader(rq.body))
				if rq.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				if rq.path == "/v1/auth/token" || rq.path == "/ops/login" {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				if rq.key != "" {
					req.Header.Set("Authorization", "Bearer "+rq.key)
				}
				start := time.Now()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || took > 3*time.Second {
					t.Errorf("%s %s: %d Retry-After %q after %s: %s", rq.method, rq.path, resp.StatusCode,
						resp.Header.Get("Retry-After"), took, body)
					continue
				}
				if strings.HasPrefix(rq.path, "/ops") {
					continue // the operator's sign-in form again, saying why
				}
				if rq.html {
					if !strings.Contains(string(body), "Temporarily unavailable") {
						t.Errorf("%s %s: the page does not say so: %s", rq.method, rq.path, body)
					}
					continue
				}
				var e struct{ Error struct{ Code string } }
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != linkflow.EServiceUnavailable {
					t.Errorf("%s %s: %s", rq.method, rq.path, body)
				}
			}
			if fault == "full" {
				return // Redis answers: the process stays ready
			}
			r := testenv.Do(t, "GET", hs.URL+"/readyz", "", nil)
			if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "redis: failing") {
				t.Errorf("/readyz: %d %s", r.StatusCode, r.Body)
			}
			// The API's address faces the internet: it names the check, not
			// the error (an internal address); the metrics address says why.
			if strings.Contains(string(r.Body), "127.0.0.1") {
				t.Errorf("/readyz on the API's address shows the error: %s", r.Body)
			}
			m := httptest.NewServer(api.Health(ready))
			defer m.Close()
			r = testenv.Do(t, "GET", m.URL+"/readyz", "", nil)
			if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "redis: ") ||
				strings.Contains(string(r.Body), "redis: failing") {
				t.Errorf("/readyz on the metrics address: %d %s", r.StatusCode, r.Body)
			}
		})
	}
}

type nopOperator struct{}

func (nopOperator) Status(context.Context) (*monitor.Status, error) {
	return nil, errors.New("no status here")
}

type nopMessages struct{}

func (nopMessages) Publish(context.Context, ...linkflow.Message) error { return nil }
func (nopMessages) Cancel(string, string)                              {}
func (nopMessages) Input(string, string)                               {}

type nopConnections struct{}

func (nopConnections) Read(context.Context, string, string, linkflow.RefreshPolicy, func()) (*connections.Read, error) {
	return nil, linkflow.ErrNotFound
}

func (nopConnections) Delete(context.Context, string, string) (*connections.Revocation, error) {
	return nil, linkflow.ErrNotFound
}
