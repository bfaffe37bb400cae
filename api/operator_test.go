package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/monitor"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/workflow"
)

const operatorKey = "op-key-0123456789abcdef"

// lateView is the stack's monitor, made once the stack (its store and
// JetStream) exists.
type lateView struct {
	m atomic.Pointer[monitor.Monitor]
}

func (v *lateView) Status(ctx context.Context) (*monitor.Status, error) {
	return v.m.Load().Status(ctx)
}

// operatorStack is linkflow with the operator page on, whose webhooks go
// to a receiver that answers 500 and are retried only an hour later; it
// returns the receiver's host.
func operatorStack(t *testing.T) (*teststack.Stack, string) {
	t.Helper()
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(recv.Close)
	view := &lateView{}
	s := teststack.NewStack(t, teststack.StackOptions{
		Worker:     func(c *workflow.Config) { c.Heartbeat = 200 * time.Millisecond },
		Dispatcher: func(c *webhooks.Config) { c.Schedule = []time.Duration{0, time.Hour} },
		API: func(c *api.Config) {
			c.KeyLimit, c.ClientLimit, c.ClaimGuessLimit, c.LoginFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit, api.NoLimit
			c.UserLoginFailureLimit, c.AddressLoginFailureLimit, c.AuthFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit
			c.OperatorKey, c.Operator, c.OperatorRefresh = operatorKey, view, 300*time.Millisecond
		}})
	m, err := monitor.New(monitor.Config{Store: s.Store, JetStream: s.JS, CacheFor: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	view.m.Store(m)
	hook := map[string]any{"webhookUrl": recv.URL + "/hook"}
	ok, bad := newLink(t, s, s.APIKey, hook), newLink(t, s, s.APIKey, hook)
	wantStatus(t, claimLink(t, s, ok.str("linkId"), ok.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
	wantStatus(t, claimLink(t, s, bad.str("linkId"), bad.str("claimCode"), "user_locked", "pass_good"), http.StatusAccepted)
	newLink(t, s, s.APIKey, nil) // waits for its end user
	waitLink(t, s, s.APIKey, ok.str("linkId"), "succeeded")
	waitLink(t, s, s.APIKey, bad.str("linkId"), "failed")
	return s, strings.TrimPrefix(recv.URL, "http://")
}

func opsRequest(t *testing.T, method, u string, form url.Values, hdr map[string]string) pageResp {
	t.Helper()
	if form == nil {
		return opsRaw(t, method, u, "", hdr)
	}
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	maps.Copy(h, hdr)
	return opsRaw(t, method, u, form.Encode(), h)
}

// opsRaw sends body as it is, with hdr (its Content-Type included).
func opsRaw(t *testing.T, method, u, body string, hdr map[string]string) pageResp {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pageResp{resp.StatusCode, resp.Header, string(b)}
}

func TestOperatorPage(t *testing.T) {
	t.Parallel()
	s, host := operatorStack(t)

	// JSON for scripts: the key as a bearer token, nothing without it.
	if r := opsRequest(t, http.MethodGet, s.URL+"/ops/status", nil, nil); r.status != http.StatusUnauthorized ||
		!strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") || strings.Contains(r.body, "consumers") {
		t.Fatalf("no key: %d %v %s", r.status, r.header, r.body)
	}
	if r := opsRequest(t, http.MethodGet, s.URL+"/ops/status", nil, map[string]string{"Authorization": "Bearer " + operatorKey + "x"}); r.status != http.StatusUnauthorized ||
		strings.Contains(r.body, "consumers") {
		t.Fatalf("wrong key: %d %s", r.status, r.body)
	}
	var rep monitor.Report
	testenv.Eventually(t, 10*time.Second, "the status to show both outcomes and the failing host", func() bool {
		r := opsRequest(t, http.MethodGet, s.URL+"/ops/status", nil, map[string]string{"Authorization": "Bearer " + operatorKey})
		if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("status: %d %v %s", r.status, r.header, r.body)
		}
		rep = monitor.Report{}
		if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
			t.Fatal(err)
		}
		return len(rep.Finished) > 0 && rep.Finished[0].Counts["succeeded"] == 1 && rep.Finished[0].Counts["failed"] == 1 &&
			rep.FailingHosts != nil && len(rep.FailingHosts.Hosts) == 1
	})
	if rep.FailingHosts.Hosts[0].Host != host || rep.Failures == nil || len(rep.Failures.Codes) != 1 ||
		rep.Failures.Codes[0].Code != "ACCOUNT_LOCKED" || rep.Links == nil || rep.Links.Pending != 1 {
		t.Fatalf("report %+v", rep.Status)
	}
	if len(rep.Probes) != 1 || rep.Probes[0].Role != "api" || !rep.Probes[0].Ready || rep.Probes[0].Checks["redis"] != "ok" {
		t.Fatalf("this process's readiness: %+v", rep.Probes)
	}

	// The page: the form until the key is given.
	form := getPage(t, s, "/ops")
	csp := form.header.Get("Content-Security-Policy")
	if form.status != http.StatusOK || !strings.Contains(form.body, `id="login-form"`) || strings.Contains(form.body, `id="status"`) ||
		!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
		form.header.Get("Cache-Control") != "no-store" || form.header.Get("X-Frame-Options") != "DENY" || strings.Contains(form.body, "style=") {
		t.Fatalf("sign-in form: %d %v\n%s", form.status, form.header, form.body)
	}
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}
	wrong := opsRequest(t, http.MethodPost, s.URL+"/ops/login", url.Values{"key": {"not-the-operator-key"}}, same)
	if wrong.status != http.StatusOK || wrong.header.Get("Set-Cookie") != "" || !strings.Contains(wrong.body, "That is not the operator key") ||
		strings.Contains(wrong.body, "ACCOUNT_LOCKED") {
		t.Fatalf("wrong key: %d %v\n%s", wrong.status, wrong.header, wrong.body)
	}
	if r := opsRequest(t, http.MethodPost, s.URL+"/ops/login", url.Values{"key": {operatorKey}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); r.status != http.StatusForbidden ||
		r.header.Get("Set-Cookie") != "" {
		t.Fatalf("cross-site sign-in: %d %v", r.status, r.header)
	}
	in := opsRequest(t, http.MethodPost, s.URL+"/ops/login", url.Values{"key": {operatorKey}}, same)
	cookie := in.header.Get("Set-Cookie")
	if in.status != http.StatusSeeOther || in.header.Get("Location") != "/ops" || !strings.HasPrefix(cookie, "linkflow_ops=") ||
		!strings.Contains(cookie, "Path=/ops") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") ||
		strings.Contains(cookie, "Secure") { // plain http here
		t.Fatalf("sign-in: %d %v", in.status, in.header)
	}
	session := strings.SplitN(cookie, ";", 2)[0]
	page := opsRequest(t, http.MethodGet, s.URL+"/ops", nil, map[string]string{"Cookie": session})
	for _, want := range []string{`id="status"`, "ACCOUNT_LOCKED", host, "worker-tmobile", `id="links-pending">1<`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Claimed links of an integration no worker serves show, marked.
	if _, err := s.JS.Publish(context.Background(), outbox.SubjectClaimed+"nobodyserves", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "the page to show the integration no worker serves", func() bool {
		p := opsRequest(t, http.MethodGet, s.URL+"/ops", nil, map[string]string{"Cookie": session})
		return strings.Contains(p.body, "worker-nobodyserves") && strings.Contains(p.body, "no worker serves this integration")
	})
	nonce := strings.TrimSuffix(strings.SplitN(strings.SplitN(page.header.Get("Content-Security-Policy"), "'nonce-", 2)[1], "'", 2)[0], "'")
	if strings.Count(page.body, `nonce="`+nonce+`"`) != 2 || strings.Contains(page.body, "<script>") || strings.Contains(page.body, "style=") {
		t.Fatalf("every script and style must carry the nonce %s:\n%s", nonce, page.body)
	}
	frag := opsRequest(t, http.MethodGet, s.URL+"/ops?part=status", nil, map[string]string{"Cookie": session})
	if !strings.HasPrefix(frag.body, `<main id="status"`) || strings.Contains(frag.body, "<style") || strings.Contains(frag.body, "<script") ||
		!strings.Contains(frag.body, "ACCOUNT_LOCKED") {
		t.Fatalf("the page's refresh fragment:\n%s", frag.body)
	}
	// Without a session the refresh gets no page (its style would break the
	// signed-in page's policy) but a 401 in the error envelope, and the
	// page's script reloads to the sign-in form.
	ended := opsRequest(t, http.MethodGet, s.URL+"/ops?part=status", nil, nil)
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	if ended.status != http.StatusUnauthorized || json.Unmarshal([]byte(ended.body), &env) != nil || env.Error.Code != linkflow.EUnauthorized ||
		ended.header.Get("Cache-Control") != "no-store" || strings.Contains(ended.body, "<") {
		t.Fatalf("the refresh fragment without a session: %d %v\n%s", ended.status, ended.header, ended.body)
	}
	// The cookie works with the key that signed it, unaltered, only.
	value := strings.TrimPrefix(session, "linkflow_ops=")
	exp, mac, _ := strings.Cut(value, ".")
	for _, forged := range []string{"linkflow_ops=9" + exp + "." + mac, "linkflow_ops=" + exp + "." + mac[1:], "linkflow_ops=" + exp} {
		if r := opsRequest(t, http.MethodGet, s.URL+"/ops", nil, map[string]string{"Cookie": forged}); !strings.Contains(r.body, `id="login-form"`) {
			t.Fatalf("a forged session %q was taken", forged)
		}
	}
	other := httptest.NewServer(s.NewAPI(t, nil, func(c *api.Config) {
		c.OperatorKey, c.Operator = "another-operator-key", &lateView{}
	}))
	t.Cleanup(other.Close)
	if r := opsRequest(t, http.MethodGet, other.URL+"/ops", nil, map[string]string{"Cookie": session}); !strings.Contains(r.body, `id="login-form"`) {
		t.Fatal("a session of another key was taken")
	}
	// Behind an https public URL the cookie goes back over TLS only, even
	// when the proxy in front is not a trusted one (which linkflow warns of).
	obs, logs := observer.New(zap.WarnLevel)
	tlsFront := httptest.NewServer(s.NewAPI(t, nil, func(c *api.Config) {
		c.OperatorKey, c.Operator, c.PublicURL, c.Logger = operatorKey, &lateView{}, "https://link.example.com", zap.New(obs)
	}))
	t.Cleanup(tlsFront.Close)
	if r := opsRequest(t, http.MethodPost, tlsFront.URL+"/ops/login", url.Values{"key": {operatorKey}}, same); r.status != http.StatusSeeOther ||
		!strings.Contains(r.header.Get("Set-Cookie"), "Secure") {
		t.Fatalf("sign-in behind an https public URL: %d %v", r.status, r.header)
	}
	if logs.FilterMessageSnippet("no trusted proxy").Len() != 1 {
		t.Fatalf("no warning of an https public URL without a trusted proxy: %v", logs.All())
	}
	out := opsRequest(t, http.MethodPost, s.URL+"/ops/logout", url.Values{}, same)
	if out.status != http.StatusSeeOther || !strings.Contains(out.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out: %d %v", out.status, out.header)
	}
}

// Without an operator key there is no page; a short key is refused; wrong
// keys count against the client address like wrong API keys.
func TestOperatorPageOffAndLimited(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	for _, p := range []string{"/ops", "/ops/status"} {
		if r := getPage(t, s, p); r.status != http.StatusNotFound {
			t.Fatalf("%s without an operator key: %d", p, r.status)
		}
	}
	conns, err := connections.New(connections.Config{Store: s.Store, Providers: s.Registry})
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{Store: s.Store, Registry: s.Registry, Connections: conns,
		Messages: outbox.Messenger{Publisher: s.Publisher, Notifier: s.Notifier}}
	for _, bad := range []func(*api.Config){
		func(c *api.Config) { c.OperatorKey, c.Operator = "too-short", &lateView{} },
		func(c *api.Config) { c.OperatorKey, c.Operator = strings.Repeat("k", 257), &lateView{} },
		func(c *api.Config) { c.OperatorKey = operatorKey },
	} {
		c := cfg
		bad(&c)
		if _, err := api.New(c); err == nil || !strings.Contains(err.Error(), "Operator") {
			t.Fatalf("api.New: %v", err)
		}
	}
	limited := httptest.NewServer(s.NewAPI(t, nil, func(c *api.Config) {
		c.OperatorKey, c.Operator = operatorKey, &lateView{}
		c.AuthFailureLimit = api.Limit{Rate: 1.0 / 3600, Burst: 2}
	}))
	t.Cleanup(limited.Close)
	// A sign-in whose body is not a form, or too large, is refused as such
	// (a page with its status) and spends no failure budget.
	for _, bad := range []struct {
		ctype, body string
		status      int
	}{
		{"application/json", `{"key":"wrong-key-0123456789"}`, http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", "key=" + strings.Repeat("k", 70<<10), http.StatusRequestEntityTooLarge},
		{"application/x-www-form-urlencoded", "key=%zz", http.StatusBadRequest},
	} {
		r := opsRaw(t, http.MethodPost, limited.URL+"/ops/login", bad.body, map[string]string{"Content-Type": bad.ctype, "Sec-Fetch-Site": "same-origin"})
		if r.status != bad.status || !strings.Contains(r.header.Get("Content-Type"), "text/html") ||
			!strings.Contains(r.body, `id="login-form"`) || strings.Contains(r.body, "That is not the operator key") {
			t.Fatalf("sign-in with a %s body: %d %s\n%s", bad.ctype, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
	// Each is still a request of its address's: under the client limit.
	clientLimited := httptest.NewServer(s.NewAPI(t, nil, func(c *api.Config) {
		c.OperatorKey, c.Operator = operatorKey, &lateView{}
		c.ClientLimit = api.Limit{Rate: 1.0 / 3600, Burst: 1}
		c.TrustedProxies = []string{"127.0.0.1/32"} // an address of its own: the requests above spent 127.0.0.1's
	}))
	t.Cleanup(clientLimited.Close)
	for i, want := range []int{http.StatusUnsupportedMediaType, http.StatusTooManyRequests} {
		r := opsRaw(t, http.MethodPost, clientLimited.URL+"/ops/login", `{}`,
			map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.23"})
		if r.status != want {
			t.Fatalf("sign-in %d with a JSON body under a client limit of 1: %d, want %d", i+1, r.status, want)
		}
	}
	codes := []int{}
	for range 3 {
		r := opsRequest(t, http.MethodGet, limited.URL+"/ops/status", nil, map[string]string{"Authorization": "Bearer wrong-key-0123456789"})
		codes = append(codes, r.status)
	}
	if codes[0] != http.StatusUnauthorized || codes[1] != http.StatusUnauthorized || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("wrong keys answered %v, want 401 401 429", codes)
	}
	if r := opsRequest(t, http.MethodPost, limited.URL+"/ops/login", url.Values{"key": {operatorKey}}, map[string]string{"Sec-Fetch-Site": "same-origin"}); r.status != http.StatusTooManyRequests {
		t.Fatalf("sign-in past the limit: %d", r.status)
	}
}

// Wrong operator keys meet two failure budgets that parallel guesses cannot
// share: the client address's, and a ceiling for every address together.
// The right key does not spend them.
func TestOperatorKeyGuessesMeetTheBudgets(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	srv := httptest.NewServer(s.NewAPI(t, nil, func(c *api.Config) {
		c.OperatorKey, c.Operator = operatorKey, emptyView{}
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.AuthFailureLimit = api.Limit{Rate: 1.0 / 3600, Burst: 2}
		c.OperatorFailureLimit = api.Limit{Rate: 1.0 / 3600, Burst: 12} // not binding while 10 guesses race
	}))
	t.Cleanup(srv.Close)
	status := func(from, key string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ops/status", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 4 { // the right key spends nothing
		if c := status("198.51.100.1", operatorKey); c != http.StatusOK {
			t.Fatalf("the right key answered %d", c)
		}
	}
	// Ten parallel guesses from one address: its budget of 2 is judged.
	judged := 0
	for _, c := range atOnce(10, func() int { return status("198.51.100.1", "wrong-key-0123456789") }) {
		if c == http.StatusUnauthorized {
			judged++
		} else if c != http.StatusTooManyRequests {
			t.Fatalf("a guess answered %d", c)
		}
	}
	if judged == 0 || judged > 2 {
		t.Fatalf("%d of 10 parallel guesses from one address were judged, want 1 or 2", judged)
	}
	// Other addresses spend the ceiling of 12 for every address together.
	for i := range 12 - judged {
		if c := status(fmt.Sprintf("203.0.113.%d", i+1), "wrong-key-0123456789"); c != http.StatusUnauthorized {
			t.Fatalf("guess %d from a fresh address answered %d", i, c)
		}
	}
	if c := status("192.0.2.77", "wrong-key-0123456789"); c != http.StatusTooManyRequests {
		t.Fatalf("a guess past the ceiling answered %d, want 429", c)
	}
	if r := opsRequest(t, http.MethodPost, srv.URL+"/ops/login", url.Values{"key": {"wrong-key-0123456789"}},
		map[string]string{"Sec-Fetch-Site": "same-origin", "X-Forwarded-For": "192.0.2.78"}); r.status != http.StatusTooManyRequests {
		t.Fatalf("a sign-in past the ceiling answered %d, want 429", r.status)
	}
}

// emptyView is a monitor that has nothing to show.
type emptyView struct{}

func (emptyView) Status(context.Context) (*monitor.Status, error) { return &monitor.Status{}, nil }
