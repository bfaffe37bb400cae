package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow/client"
)

// recorder is an httptest server that answers from a script, one answer per
// request, and records what it got.
type recorder struct {
	srv *httptest.Server

	mu      sync.Mutex
	answers []answer
	got     []*http.Request
	bodies  []string
}

type answer struct {
	status     int
	retryAfter string
	body       string
	// hangUp closes the connection without an answer, after the request
	// was read: a transport error where the server may have acted.
	hangUp bool
}

func newRecorder(t *testing.T, answers ...answer) *recorder {
	t.Helper()
	rec := &recorder{answers: answers}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = append(rec.got, r)
		rec.bodies = append(rec.bodies, string(b))
		a := answer{status: http.StatusInternalServerError, body: `{"error":{"code":"INTERNAL_SERVER_ERROR","message":"script ran out"}}`}
		if len(rec.answers) > 0 {
			a, rec.answers = rec.answers[0], rec.answers[1:]
		}
		rec.mu.Unlock()
		if a.hangUp {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_from_header")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) body(i int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[i]
}

// script sets the answers to come.
func (r *recorder) script(answers ...answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = answers
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.got...)
}

// newClient returns a client of rec whose waits are recorded, not spent.
func newClient(t *testing.T, rec *recorder, cfg client.Config) (*client.Client, *[]time.Duration) {
	t.Helper()
	cfg.BaseURL = rec.srv.URL
	cfg.APIKey = "lfk_test"
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	client.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*waits = append(*waits, d)
		return ctx.Err()
	})
	return c, waits
}

const (
	created     = `{"linkId":"link_1","claimCode":"clm_1","integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}],"status":"pending","appClipUrl":"http://x/link/link_1?code=clm_1","expiresAt":2,"createdAt":1}`
	limited     = `{"meta":{"request_id":"req_429"},"error":{"code":"TOO_MANY_REQUESTS","message":"Slow down."}}`
	unavailable = `{"meta":{"request_id":"req_503"},"error":{"code":"SERVICE_UNAVAILABLE","message":"Try again."}}`
	linkBody    = `{"linkId":"link_1","integrationId":"tmobile","operations":[],"status":"pending","debug":false,"createdAt":1,"expiresAt":2,"claimedAt":null,"startedAt":null,"completedAt":null,"username":null,"connectionId":null}`
)

var createReq = client.CreateLinkRequest{IntegrationID: "tmobile", Operations: []client.OperationInput{{Resource: "paymentMethod", Action: "read"}}}

// The brief's case: 429 with Retry-After: 1, then 201. The create waits the
// second linkflow asked for and sends the same Idempotency-Key and body.
func TestRetryCreateAfter429(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, answer{status: 429, retryAfter: "1", body: limited}, answer{status: 201, body: created})
	c, waits := newClient(t, rec, client.Config{})

	l, err := c.CreateLink(context.Background(), createReq)
	if err != nil {
		t.Fatal(err)
	}
	if l.LinkID != "link_1" || l.ExpiresAt != 2 {
		t.Errorf("link %+v", l)
	}
	got := rec.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	k1, k2 := got[0].Header.Get("Idempotency-Key"), got[1].Header.Get("Idempotency-Key")
	if k1 == "" || k1 != k2 {
		t.Errorf("Idempotency-Key %q then %q, want one random key on both tries", k1, k2)
	}
	if b := rec.body(0); b != rec.body(1) {
		t.Errorf("bodies differ: %s / %s", b, rec.body(1))
	}
	if len(*waits) != 1 || (*waits)[0] != time.Second {
		t.Errorf("waited %v, want [1s]", *waits)
	}
	if a := got[0].Header.Get("Authorization"); a != "Bearer lfk_test" {
		t.Errorf("Authorization %q", a)
	}
	if ua := got[0].Header.Get("User-Agent"); ua != client.DefaultUserAgent {
		t.Errorf("User-Agent %q", ua)
	}

	// Each call has its own key; a key the caller gives is used as it is.
	rec.script(answer{status: 201, body: created}, answer{status: 201, body: created})
	if _, err := c.CreateLink(context.Background(), createReq); err != nil {
		t.Fatal(err)
	}
	own := createReq
	own.IdempotencyKey = "order-1234"
	if _, err := c.CreateLink(context.Background(), own); err != nil {
		t.Fatal(err)
	}
	got = rec.requests()
	if k := got[2].Header.Get("Idempotency-Key"); k == "" || k == k1 {
		t.Errorf("second call's key %q, want a new one (first %q)", k, k1)
	}
	if k := got[3].Header.Get("Idempotency-Key"); k != "order-1234" {
		t.Errorf("caller's key sent as %q", k)
	}
	if b := rec.body(3); strings.Contains(b, "order-1234") {
		t.Errorf("the idempotency key leaked into the body: %s", b)
	}
}

// The same with the real clock: the client does wait out Retry-After.
func TestRetryAfterRealClock(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, answer{status: 429, retryAfter: "1", body: limited}, answer{status: 201, body: created})
	c, err := client.New(client.Config{BaseURL: rec.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.CreateLink(context.Background(), createReq); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("took %s, want at least the 1s of Retry-After", d)
	}
}

func TestRetryRules(t *testing.T) {
	t.Parallel()
	get := func(c *client.Client) error { _, err := c.GetLink(context.Background(), "link_1"); return err }
	cancel := func(c *client.Client) error { _, err := c.CancelLink(context.Background(), "link_1"); return err }
	claim := func(c *client.Client) error {
		_, err := c.ClaimLink(context.Background(), "link_1", client.ClaimRequest{ClaimCode: "clm_1"})
		return err
	}
	create := func(c *client.Client) error { _, err := c.CreateLink(context.Background(), createReq); return err }
	del := func(c *client.Client) error { _, err := c.DeleteConnection(context.Background(), "conn_1"); return err }
	ok200 := answer{status: 200, body: linkBody}

	tests := []struct {
		name     string
		call     func(*client.Client) error
		answers  []answer
		cfg      client.Config
		tries    int
		wantErr  int // status of the *Error; 0 for none, -1 for a transport error
		minWaits []time.Duration
	}{
		{"GET after 503 with Retry-After", get, []answer{{status: 503, retryAfter: "2", body: unavailable}, ok200}, client.Config{}, 2, 0, []time.Duration{2 * time.Second}},
		{"GET after 503 without Retry-After backs off", get, []answer{{status: 503, body: unavailable}, ok200}, client.Config{}, 2, 0, []time.Duration{125 * time.Millisecond}},
		{"GET after a transport error", get, []answer{{hangUp: true}, ok200}, client.Config{}, 2, 0, []time.Duration{125 * time.Millisecond}},
		{"DELETE after a transport error", del, []answer{{hangUp: true}, {status: 200, body: `{}`}}, client.Config{}, 2, 0, nil},
		{"create after a transport error (same key)", create, []answer{{hangUp: true}, {status: 201, body: created}}, client.Config{}, 2, 0, nil},
		{"create after 503", create, []answer{{status: 503, body: unavailable}, {status: 201, body: created}}, client.Config{}, 2, 0, nil},
		{"cancel after 429", cancel, []answer{{status: 429, retryAfter: "1", body: limited}, ok200}, client.Config{}, 2, 0, []time.Duration{time.Second}},
		{"GET after a proxy's 502", get, []answer{{status: 502, body: `<html>Bad Gateway</html>`}, ok200}, client.Config{}, 2, 0, nil},
		{"GET after a proxy's 504", get, []answer{{status: 504, body: ``}, ok200}, client.Config{}, 2, 0, nil},
		{"cancel not after a proxy's 502", cancel, []answer{{status: 502, body: ``}}, client.Config{}, 1, 502, nil},
		{"cancel not after 503", cancel, []answer{{status: 503, body: unavailable}}, client.Config{}, 1, 503, nil},
		{"cancel not after a transport error", cancel, []answer{{hangUp: true}}, client.Config{}, 1, -1, nil},
		{"claim not after a transport error", claim, []answer{{hangUp: true}}, client.Config{}, 1, -1, nil},
		{"no retry on 409", cancel, []answer{{status: 409, body: `{"meta":{"request_id":"r"},"error":{"code":"CONFLICT_ERROR","message":"Finished."}}`}}, client.Config{}, 1, 409, nil},
		{"no retry on 500", get, []answer{{status: 500, body: `{"error":{"code":"INTERNAL_SERVER_ERROR","message":"Bug."}}`}}, client.Config{}, 1, 500, nil},
		{"attempts are bounded", get, []answer{{status: 429, retryAfter: "1", body: limited}, {status: 429, retryAfter: "1", body: limited}, {status: 429, retryAfter: "1", body: limited}, ok200}, client.Config{}, 3, 429, nil},
		{"MaxAttempts 1 turns retries off", get, []answer{{status: 429, retryAfter: "1", body: limited}}, client.Config{MaxAttempts: 1}, 1, 429, nil},
		{"Retry-After over MaxRetryWait is not waited for", get, []answer{{status: 429, retryAfter: "120", body: limited}}, client.Config{}, 1, 429, nil},
		{"Retry-After too long to count is not waited for", get, []answer{{status: 429, retryAfter: "10000000000", body: limited}, ok200}, client.Config{}, 1, 429, nil},
		{"MaxRetryWait raised", get, []answer{{status: 429, retryAfter: "120", body: limited}, ok200}, client.Config{MaxRetryWait: 5 * time.Minute}, 2, 0, []time.Duration{2 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t, tt.answers...)
			c, waits := newClient(t, rec, tt.cfg)
			err := tt.call(c)
			if n := len(rec.requests()); n != tt.tries {
				t.Errorf("%d tries, want %d (err %v)", n, tt.tries, err)
			}
			var apiErr *client.Error
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Errorf("error %v", err)
			case tt.wantErr == -1 && (err == nil || errors.As(err, &apiErr)):
				t.Errorf("error %v, want a transport error", err)
			case tt.wantErr > 0 && (!errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantErr):
				t.Errorf("error %v, want a %d *client.Error", err, tt.wantErr)
			}
			if len(*waits) != len(tt.minWaits) && tt.minWaits != nil {
				t.Errorf("waits %v, want %d", *waits, len(tt.minWaits))
			}
			for i, w := range tt.minWaits {
				if i < len(*waits) && ((*waits)[i] < w || (*waits)[i] > 2*w) {
					t.Errorf("wait %d is %s, want %s to %s", i, (*waits)[i], w, 2*w)
				}
			}
			if tt.name == "attempts are bounded" && apiErr != nil && (apiErr.RetryAfter != time.Second || apiErr.RequestID != "req_429") {
				t.Errorf("last error %+v", apiErr)
			}
		})
	}
}

// A context that ends during a wait ends the call at once, with both the
// context's error and the answer that caused the wait.
func TestRetryWaitRespectsContext(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, answer{status: 429, retryAfter: "20", body: limited})
	c, err := client.New(client.Config{BaseURL: rec.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan time.Duration, 1)
	client.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		waiting <- d
		return client.SleepCtx(ctx, d) // the real wait
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.GetLink(ctx, "link_1"); done <- err }()
	select {
	case d := <-waiting:
		if d != 20*time.Second {
			t.Errorf("waiting %s, want Retry-After's 20s", d)
		}
	case err := <-done:
		t.Fatalf("returned without waiting: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		var apiErr *client.Error
		if !errors.Is(err, context.Canceled) || !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
			t.Errorf("error %v, want context.Canceled and the 429", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call kept waiting after its context was canceled")
	}

	// A context already done when the answer comes ends the call the same
	// way, without a wait.
	if err := client.SleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("wait on a canceled context: %v", err)
	}

	// A wait that would outlast the deadline is not started.
	rec.script(answer{status: 429, retryAfter: "20", body: limited})
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.GetLink(ctx, "link_1")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != 20*time.Second || time.Since(start) > 5*time.Second {
		t.Errorf("error %v after %s, want the 429 at once", err, time.Since(start))
	}
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t,
		answer{status: 400, body: `{"meta":{"request_id":"req_abc"},"error":{"code":"BAD_REQUEST","message":"Validation failed.","detail":"d","issues":[{"path":"webhookUrl","message":"must be a valid absolute http(s) URL"}]}}`},
		answer{status: 502, body: `<html>bad gateway</html>`},
		answer{status: 404, body: `{"meta":{"request_id":"req_nf"},"error":{"code":"NOT_FOUND","message":"Link not found."}}`},
		answer{status: 200, body: `not json`},
	)
	c, _ := newClient(t, rec, client.Config{})
	ctx := context.Background()

	_, err := c.CreateLink(ctx, createReq)
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 400 || e.Code != client.CodeBadRequest || e.Message != "Validation failed." ||
		e.Detail != "d" || e.RequestID != "req_abc" || len(e.Issues) != 1 || e.Issues[0].Path != "webhookUrl" {
		t.Fatalf("400: %#v", err)
	}
	if s := err.Error(); !strings.Contains(s, "POST /v1/links") || !strings.Contains(s, "webhookUrl must be") || !strings.Contains(s, "req_abc") {
		t.Errorf("message %q", s)
	}

	_, err = c.CancelLink(ctx, "link_1") // not retried after a 502
	if !errors.As(err, &e) || e.StatusCode != 502 || e.Code != "" || e.RequestID != "req_from_header" || !strings.Contains(e.Detail, "bad gateway") {
		t.Fatalf("502 from a proxy: %#v", err)
	}

	_, err = c.GetLink(ctx, "link_2")
	if !client.IsNotFound(err) || client.IsNotFound(errors.New("x")) || client.IsNotFound(nil) {
		t.Fatalf("IsNotFound(%v)", err)
	}

	if _, err = c.GetLink(ctx, "link_3"); err == nil || errors.As(err, &e) {
		t.Fatalf("undecodable 200: %v", err)
	}
}

// Errors never carry the claim code of GetSession's query, nor the key.
func TestErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, answer{hangUp: true}, answer{hangUp: true}, answer{hangUp: true},
		answer{status: 404, body: `{"meta":{"request_id":"r"},"error":{"code":"NOT_FOUND","message":"Link not found."}}`})
	c, _ := newClient(t, rec, client.Config{})
	for range 2 {
		_, err := c.GetSession(context.Background(), "link_1", "clm_secret")
		if err == nil || strings.Contains(err.Error(), "clm_secret") || strings.Contains(err.Error(), "lfk_test") {
			t.Errorf("error %q", err)
		}
	}
	if got := rec.requests()[0].URL.Query().Get("code"); got != "clm_secret" {
		t.Errorf("code sent as %q", got)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []client.Config{
		{},
		{BaseURL: "localhost:8080"},
		{BaseURL: "ftp://x"},
		{BaseURL: "http://x?a=b"},
		{BaseURL: "http://x", MaxAttempts: -1},
		{BaseURL: "http://x", MaxRetryWait: -time.Second},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	// A base URL with a path prefix keeps it.
	rec := newRecorder(t, answer{status: 200, body: `{"data":[]}`})
	c, err := client.New(client.Config{BaseURL: rec.srv.URL + "/linkflow/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListProviders(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := rec.requests()[0].URL.Path; p != "/linkflow/v1/providers" {
		t.Errorf("path %s", p)
	}
}

func TestTimeAndResults(t *testing.T) {
	t.Parallel()
	if got := client.Time(1767312000000); !got.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Time = %s", got)
	}
	ms := int64(1000)
	if !client.TimeOf(nil).IsZero() || client.TimeOf(&ms).Unix() != 1 || client.Millis(time.Unix(2, 0)) != 2000 {
		t.Error("TimeOf / Millis")
	}

	one := client.Link{Operations: []client.Operation{{Resource: "paymentMethod", Action: "read"}},
		Result: json.RawMessage(`{"paymentMethods":[1]}`)}
	res, err := one.OperationResults()
	if err != nil || len(res) != 1 || res[0].Action != "read" || string(res[0].Data) != `{"paymentMethods":[1]}` {
		t.Errorf("one operation: %+v %v", res, err)
	}
	two := client.Link{Operations: []client.Operation{{Resource: "paymentMethod", Action: "read"}, {Resource: "paymentMethod", Action: "write"}},
		Result: json.RawMessage(`{"operations":[{"resource":"paymentMethod","action":"read","data":{"paymentMethods":[]}},{"resource":"paymentMethod","action":"write","data":{"paymentMethod":{}}}]}`)}
	res, err = two.OperationResults()
	if err != nil || len(res) != 2 || res[1].Action != "write" || string(res[1].Data) != `{"paymentMethod":{}}` {
		t.Errorf("two operations: %+v %v", res, err)
	}
	if res, err := (&client.Link{}).OperationResults(); res != nil || err != nil {
		t.Errorf("no result: %v %v", res, err)
	}
}

// linkflow's API never redirects: a redirect (BaseURL with http for https,
// say) is an error naming it, never a POST turned into a GET whose answer
// is decoded as the call's. A caller's own HTTPClient that follows it gets
// an error too.
func TestRedirectIsAnError(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method)
		mu.Unlock()
		if r.Method == http.MethodPost {
			http.Redirect(w, r, "/v1/links/", http.StatusFound)
			return
		}
		if r.URL.Query().Has("code") {
			http.Redirect(w, r, "/moved"+r.URL.Path+"?"+r.URL.RawQuery, http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":[],"nextCursor":null}`)
	}))
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		name  string
		http  *http.Client
		tries int
	}{
		{"default HTTPClient", nil, 1},
		{"a caller's HTTPClient that follows redirects", &http.Client{}, 2},
	} {
		mu.Lock()
		methods = nil
		mu.Unlock()
		c, err := client.New(client.Config{BaseURL: srv.URL, APIKey: "lfk_test", HTTPClient: tt.http, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.CreateLink(context.Background(), createReq)
		if err == nil {
			t.Fatalf("%s: created %+v from a redirect", tt.name, l)
		}
		if !strings.Contains(err.Error(), "BaseURL") {
			t.Errorf("%s: error %q does not say to check BaseURL", tt.name, err)
		}
		mu.Lock()
		if len(methods) != tt.tries {
			t.Errorf("%s: requests %v", tt.name, methods)
		}
		mu.Unlock()
	}
	// A redirect's error names where it went, but not the query it
	// carried: the end user's calls hold the claim code there.
	c, err := client.New(client.Config{BaseURL: srv.URL, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSession(context.Background(), "link_1", "clm_secret_code")
	if err == nil || strings.Contains(err.Error(), "clm_secret_code") || !strings.Contains(err.Error(), "/moved/") {
		t.Fatalf("a redirected GetSession: %v, want the path without the claim code", err)
	}
}

// A list iterator ranged twice yields the whole list twice.
func TestIteratorRangedTwice(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("cursor") == "" {
			_, _ = io.WriteString(w, `{"data":[{"linkId":"link_2"}],"nextCursor":"c1"}`)
			return
		}
		_, _ = io.WriteString(w, `{"data":[{"linkId":"link_1"}],"nextCursor":null}`)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL, APIKey: "lfk_test"})
	if err != nil {
		t.Fatal(err)
	}
	links := c.Links(context.Background(), client.ListLinksParams{})
	for round := range 2 {
		var got []string
		for l, err := range links {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, l.LinkID)
		}
		if strings.Join(got, ",") != "link_2,link_1" {
			t.Fatalf("round %d: %v", round, got)
		}
	}
}

// A list iterator whose page cannot be read yields a PageError naming that
// page's cursor, through which the API's error is seen; resumed from it,
// the list goes on where it stopped.
func TestIteratorResumesFromTheFailingPage(t *testing.T) {
	t.Parallel()
	var failed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("cursor") {
		case "":
			_, _ = io.WriteString(w, `{"data":[{"linkId":"link_3"}],"nextCursor":"c1"}`)
		case "c1":
			if !failed.Swap(true) {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"error":{"code":"SERVICE_UNAVAILABLE","message":"Redis is unavailable."}}`)
				return
			}
			_, _ = io.WriteString(w, `{"data":[{"linkId":"link_2"}],"nextCursor":"c2"}`)
		default:
			_, _ = io.WriteString(w, `{"data":[{"linkId":"link_1"}],"nextCursor":null}`)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL, APIKey: "lfk_test", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var pe *client.PageError
	for l, err := range c.Links(context.Background(), client.ListLinksParams{}) {
		if err != nil {
			var ae *client.Error
			if !errors.As(err, &pe) || pe.Cursor != "c1" || !errors.As(err, &ae) || ae.Code != "SERVICE_UNAVAILABLE" {
				t.Fatalf("the failing page's error: %#v", err)
			}
			break
		}
		got = append(got, l.LinkID)
	}
	if pe == nil {
		t.Fatal("no error from the failing page")
	}
	for l, err := range c.Links(context.Background(), client.ListLinksParams{Cursor: pe.Cursor}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l.LinkID)
	}
	if strings.Join(got, ",") != "link_3,link_2,link_1" {
		t.Fatalf("resumed: %v", got)
	}
}
