package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/conformance"
	"github.com/linkflow/linkflow/operations/remote"
	"github.com/linkflow/linkflow/operations/sandbox"
)

const secret = "s3cret"

type testBundle struct {
	sb         *sandbox.Sandbox
	providers  *operations.Registry // the remote side: the sandbox's own registry
	server     *httptest.Server
	registered *operations.Registry // linkflow's side, filled from the catalog
}

// setup serves a sandbox over the protocol, with a shared secret, and
// registers its catalog in a fresh registry.
func setup(t *testing.T, slow time.Duration) *testBundle {
	t.Helper()
	rdb, _ := testenv.Redis(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	b := &testBundle{providers: operations.NewRegistry(nil), registered: operations.NewRegistry(nil)}
	var err error
	if b.sb, err = sandbox.New(sandbox.Config{Store: sandbox.NewRedisStore(rdb), SlowDelay: slow, Logger: log}); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Register(b.providers, b.sb); err != nil {
		t.Fatal(err)
	}
	h, err := remote.NewHandler(remote.HandlerConfig{Registry: b.providers, Secret: secret, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b.server = httptest.NewServer(h)
	t.Cleanup(b.server.Close)
	ids, err := remote.Register(context.Background(), b.registered, remote.RegisterConfig{
		Config: remote.Config{BaseURL: b.server.URL, Secret: secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.registered.Close(context.Background()) })
	if want := sandbox.IntegrationIDs(); !reflect.DeepEqual(ids, want) {
		t.Fatalf("registered %v, want %v", ids, want)
	}
	return b
}

func TestConformance(t *testing.T) {
	t.Parallel()
	b := setup(t, time.Second)
	conformance.Run(t, conformance.Harness{Registry: b.registered, Sandbox: b.sb, SlowDelay: time.Second})
}

// The catalog linkflow registers from is the provider's: same actions, same
// schemas, so validation on either side agrees.
func TestCatalogRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	for _, id := range sandbox.IntegrationIDs() {
		want, _ := b.providers.Integration(id)
		got, _ := b.registered.Integration(id)
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if string(wj) != string(gj) {
			t.Fatalf("%s: registered\n%s\nserved\n%s", id, gj, wj)
		}
		if _, ok := got.Provider.(operations.Refresher); !ok {
			t.Fatalf("%s: the remote provider lost its refresh capability", id)
		}
	}
	ops := []linkflow.Operation{
		{Resource: "mobileBillingStatement", Action: "read", Arguments: json.RawMessage(`{"months":30}`)},
		{Resource: "paymentMethod", Action: "write", Arguments: json.RawMessage(`{"cardNumber":"4111111111111112"}`)},
		{Resource: "orderHistory", Action: "read"},
	}
	if a, b := b.providers.ValidateOperations("att", ops), b.registered.ValidateOperations("att", ops); !reflect.DeepEqual(a, b) || len(a) == 0 {
		t.Fatalf("validation differs:\nprovider %v\nlinkflow %v", a, b)
	}
}

func TestRegisterMapsAndFilters(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	reg := operations.NewRegistry(nil)
	ids, err := remote.Register(context.Background(), reg, remote.RegisterConfig{
		Config: remote.Config{BaseURL: b.server.URL + "/", Secret: secret},
		IDs:    map[string]string{"tmobile": "tmobile_remote"},
		Only:   []string{"tmobile"},
	})
	if err != nil || !reflect.DeepEqual(ids, []string{"tmobile_remote"}) || !reflect.DeepEqual(reg.IDs(), ids) {
		t.Fatalf("registered %v (%v), registry has %v", ids, err, reg.IDs())
	}
	// The same catalog again would replace what is there: refused.
	if _, err := remote.Register(context.Background(), reg, remote.RegisterConfig{
		Config: remote.Config{BaseURL: b.server.URL, Secret: secret}, IDs: map[string]string{"tmobile": "tmobile_remote"},
	}); err == nil || !strings.Contains(err.Error(), "already registered") || !reflect.DeepEqual(reg.IDs(), ids) {
		t.Fatalf("registering over an integration: %v; registry has %v", err, reg.IDs())
	}
	p, _ := reg.Provider("tmobile_remote")
	ctx := context.Background()
	res, err := p.Login(ctx, operations.LoginRequest{Integration: "tmobile_remote", Attempt: 1, Username: "mapped", Password: sandbox.PasswordGood})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx, res.SessionID)
	if _, err := p.Execute(ctx, operations.ExecuteRequest{Integration: "tmobile_remote", SessionID: res.SessionID,
		Resource: "accountProfile", Action: "read"}); err != nil {
		t.Fatal(err)
	}
}

func TestSharedSecret(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	ctx := context.Background()
	if _, err := remote.Register(ctx, operations.NewRegistry(nil), remote.RegisterConfig{Config: remote.Config{BaseURL: b.server.URL}}); err == nil {
		t.Fatal("registered without the secret")
	}
	c, err := remote.NewClient(remote.Config{BaseURL: b.server.URL, Secret: "wrong", Integration: "att"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Login(ctx, operations.LoginRequest{Attempt: 1, Username: sandbox.UserGood, Password: sandbox.PasswordGood})
	if pe := operations.AsError(err); pe.Code != linkflow.FailureProviderUnavailable || !pe.Transient || !strings.Contains(pe.Message, remote.CodeUnauthorized) {
		t.Fatalf("wrong secret: %v", err)
	}
}

// A client without Config.Integration serves every integration, and still
// closes each session at the right one.
func TestClientForManyIntegrations(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	ctx := context.Background()
	c, err := remote.NewClient(remote.Config{BaseURL: b.server.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown(ctx)
	for _, id := range []string{"att", "ubereats"} {
		res, err := c.Login(ctx, operations.LoginRequest{Integration: id, Attempt: 1, Username: "many", Password: sandbox.PasswordGood})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := b.sb.LiveSessions(ctx, id); n != 1 {
			t.Fatalf("%s: %d live sessions", id, n)
		}
		if err := c.Close(ctx, res.SessionID); err != nil {
			t.Fatal(err)
		}
		if n, err := b.sb.LiveSessions(ctx, id); err != nil || n != 0 {
			t.Fatalf("%s: %d live sessions after close (%v)", id, n, err)
		}
	}
}

// A provider without refresh or revoke is registered without them.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	srv := serveOne(t, "plain", plainProvider{}, nil)
	reg := operations.NewRegistry(nil)
	if _, err := remote.Register(context.Background(), reg, remote.RegisterConfig{Config: remote.Config{BaseURL: srv.URL}}); err != nil {
		t.Fatal(err)
	}
	p, _ := reg.Provider("plain")
	if _, ok := p.(operations.Refresher); ok {
		t.Fatal("a provider without refresh was registered as a Refresher")
	}
	if _, ok := p.(operations.Revoker); ok {
		t.Fatal("a provider without revoke was registered as a Revoker")
	}
	out, err := p.Execute(context.Background(), operations.ExecuteRequest{Integration: "plain", Resource: "thing", Action: "read"})
	if err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("execute: %s, %v", out, err)
	}
	// Calling refresh directly answers NOT_SUPPORTED, a permanent error.
	c, _ := remote.NewClient(remote.Config{BaseURL: srv.URL, Integration: "plain"})
	_, err = c.Refresh(context.Background(), operations.Credentials{RefreshToken: "x"})
	if pe := operations.AsError(err); pe.Code != linkflow.FailureRejected || !strings.Contains(pe.Message, remote.CodeNotSupported) {
		t.Fatalf("refresh: %v", err)
	}
}

type plainProvider struct{}

func (plainProvider) Login(context.Context, operations.LoginRequest) (*operations.LoginResult, error) {
	return &operations.LoginResult{SessionID: "s"}, nil
}

func (plainProvider) ContinueLogin(context.Context, operations.ContinueRequest) (*operations.LoginResult, error) {
	return nil, operations.Rejected("no challenge")
}

func (plainProvider) Execute(context.Context, operations.ExecuteRequest) (json.RawMessage, error) {
	return json.RawMessage(`{"ok":true}`), nil
}

func (plainProvider) Close(context.Context, string) error { return nil }

// How a client types each kind of failed answer.
func TestClientErrors(t *testing.T) {
	t.Parallel()
	type answer struct {
		status int
		header map[string]string
		body   string
	}
	tests := []struct {
		name       string
		answer     answer
		code       linkflow.FailureCode
		transient  bool
		retryAfter time.Duration
	}{
		{"declined", answer{402, nil, `{"error":{"code":"DECLINED","message":"no"}}`}, linkflow.FailureDeclined, false, 0},
		{"locked", answer{423, nil, `{"error":{"code":"ACCOUNT_LOCKED","message":"locked"}}`}, linkflow.FailureAccountLocked, false, 0},
		{"code decides, not status", answer{500, nil, `{"error":{"code":"INVALID_CREDENTIALS","message":"bad"}}`}, linkflow.FailureInvalidCredentials, false, 0},
		{"rate limited body", answer{429, nil, `{"error":{"code":"RATE_LIMITED","message":"slow","transient":true,"retryAfterMs":1500}}`}, linkflow.FailureRateLimited, true, 1500 * time.Millisecond},
		{"rate limited header", answer{429, map[string]string{"Retry-After": "2"}, ``}, linkflow.FailureRateLimited, true, 2 * time.Second},
		{"unknown transient code", answer{503, nil, `{"error":{"code":"MAINTENANCE","message":"later","transient":true}}`}, linkflow.FailureProviderUnavailable, true, 0},
		{"UNAUTHORIZED without transient", answer{401, nil, `{"error":{"code":"UNAUTHORIZED","message":"wrong secret"}}`}, linkflow.FailureProviderUnavailable, true, 0},
		{"NOT_SUPPORTED said transient", answer{501, nil, `{"error":{"code":"NOT_SUPPORTED","message":"no","transient":true}}`}, linkflow.FailureRejected, false, 0},
		{"unknown permanent code", answer{400, nil, `{"error":{"code":"BAD_THING","message":"no"}}`}, linkflow.FailureRejected, false, 0},
		{"bare 503", answer{503, map[string]string{"Retry-After": "3"}, `oops`}, linkflow.FailureProviderUnavailable, true, 3 * time.Second},
		{"bare 502", answer{502, nil, ``}, linkflow.FailureProviderUnavailable, true, 0},
		{"bare 504", answer{504, nil, ``}, linkflow.FailureProviderTimeout, true, 0},
		{"bare 404", answer{404, nil, `not found`}, linkflow.FailureRejected, false, 0},
		{"200 with bad JSON", answer{200, nil, `{"result":`}, linkflow.FailureProviderUnavailable, true, 0},
		// Over the client's 16 MiB bound: too large, not a truncated body
		// read as invalid JSON and the whole session run again for it.
		{"200 over 16 MiB", answer{200, nil, `{"result":"` + strings.Repeat("x", 16<<20) + `"}`}, linkflow.FailureResultTooLarge, false, 0},
		{"503 page over 16 MiB", answer{503, nil, strings.Repeat("x", 16<<20+1)}, linkflow.FailureProviderUnavailable, true, 0},
		// A 200 is a success only with a result: an error body, or the
		// result not under "result", is no outcome to report.
		{"200 with an error body", answer{200, nil, `{"error":{"code":"DECLINED","message":"no"}}`}, linkflow.FailureProviderUnavailable, true, 0},
		{"200 without result", answer{200, nil, `{"paymentMethods":[]}`}, linkflow.FailureProviderUnavailable, true, 0},
		{"huge Retry-After", answer{503, map[string]string{"Retry-After": "99999999999"}, ``}, linkflow.FailureProviderUnavailable, true, 24 * time.Hour},
		{"huge retryAfterMs", answer{429, nil, `{"error":{"code":"RATE_LIMITED","message":"slow","transient":true,"retryAfterMs":9223372036854775807}}`}, linkflow.FailureRateLimited, true, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.answer.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.answer.status)
				fmt.Fprint(w, tt.answer.body)
			}))
			defer srv.Close()
			c, err := remote.NewClient(remote.Config{BaseURL: srv.URL, Integration: "x"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Execute(context.Background(), operations.ExecuteRequest{SessionID: "s"})
			var pe *operations.Error
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %v", err)
			}
			if pe.Code != tt.code || pe.Transient != tt.transient || pe.RetryAfter != tt.retryAfter {
				t.Fatalf("got %s transient=%v retry=%v (%s), want %s transient=%v retry=%v",
					pe.Code, pe.Transient, pe.RetryAfter, pe.Message, tt.code, tt.transient, tt.retryAfter)
			}
		})
	}
}

func TestClientTransportFailures(t *testing.T) {
	t.Parallel()
	// A provider that never answers: the client's timeout ends the call.
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer stuck.Close()
	defer close(release)
	c, err := remote.NewClient(remote.Config{BaseURL: stuck.URL, Integration: "x", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Login(context.Background(), operations.LoginRequest{})
	if pe := operations.AsError(err); pe.Code != linkflow.FailureProviderTimeout || !pe.Transient {
		t.Fatalf("stuck provider: %v", err)
	}
	// The caller's cancellation is not the provider's fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = c.Login(ctx, operations.LoginRequest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	// Nobody listening: transient unavailability.
	gone := httptest.NewServer(http.NotFoundHandler())
	url := gone.URL
	gone.Close()
	obs, logs := observer.New(zap.WarnLevel)
	c, _ = remote.NewClient(remote.Config{BaseURL: url, Integration: "x", Logger: zap.New(obs)})
	_, err = c.Login(context.Background(), operations.LoginRequest{})
	if pe := operations.AsError(err); pe.Code != linkflow.FailureProviderUnavailable || !pe.Transient {
		t.Fatalf("unreachable provider: %v", err)
	}
	// The error reaches the customer (the link's error): it names the path,
	// not the provider's address, which the log gets.
	host := strings.TrimPrefix(url, "http://")
	if strings.Contains(err.Error(), host) || logs.FilterMessage("remote provider unreachable").Len() != 1 ||
		!strings.Contains(fmt.Sprint(logs.All()[0].ContextMap()["error"]), host) {
		t.Fatalf("unreachable provider: %v; log %v", err, logs.All())
	}
}

// A redirect is not followed: the login's password goes nowhere else.
func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c, err := remote.NewClient(remote.Config{BaseURL: srv.URL, Integration: "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Login(context.Background(), operations.LoginRequest{Username: "u", Password: "p"})
	if err == nil || elsewhere.Load() != 0 {
		t.Fatalf("a redirected login: %v, %d requests elsewhere", err, elsewhere.Load())
	}
}

func TestHandlerAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	post := func(path, body string, auth bool) (int, remote.ErrorResponse) {
		req, _ := http.NewRequest(http.MethodPost, b.server.URL+path, strings.NewReader(body))
		if auth {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e remote.ErrorResponse
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e
	}
	tests := []struct {
		name, path, body string
		auth             bool
		status           int
		code             string
	}{
		{"no secret", "/login", `{}`, false, 401, remote.CodeUnauthorized},
		{"bad JSON", "/login", `{`, true, 422, string(linkflow.FailureRejected)},
		{"unknown integration", "/login", `{"integration":"nope"}`, true, 422, string(linkflow.FailureRejected)},
		{"bad password", "/login", `{"integration":"att","attempt":1,"username":"u","password":"x"}`, true, 401, string(linkflow.FailureInvalidCredentials)},
		{"locked", "/login", `{"integration":"att","attempt":1,"username":"user_locked","password":"pass_good"}`, true, 423, string(linkflow.FailureAccountLocked)},
		{"flaky", "/login", `{"integration":"att","attempt":1,"username":"user_flaky","password":"pass_good"}`, true, 503, string(linkflow.FailureProviderUnavailable)},
		{"invalid arguments", "/execute", `{"integration":"att","sessionId":"s","resource":"mobileBillingStatement","action":"read","arguments":{"months":0}}`, true, 422, string(linkflow.FailureRejected)},
		{"unknown session", "/execute", `{"integration":"att","sessionId":"s","resource":"accountProfile","action":"read"}`, true, 503, string(linkflow.FailureProviderUnavailable)},
		{"close unknown session", "/close", `{"integration":"att","sessionId":"s"}`, true, 200, ""},
		{"refresh garbage", "/refresh", `{"integration":"att","credentials":{"refreshToken":"x"}}`, true, 401, string(linkflow.FailureInvalidCredentials)},
	}
	for _, tt := range tests {
		status, e := post(tt.path, tt.body, tt.auth)
		if status != tt.status || e.Error.Code != tt.code {
			t.Errorf("%s: %d %+v, want %d %s", tt.name, status, e.Error, tt.status, tt.code)
		}
		if tt.code != "" && e.Error.Transient != (tt.code == string(linkflow.FailureProviderUnavailable) || tt.code == remote.CodeUnauthorized) {
			t.Errorf("%s: transient %v", tt.name, e.Error.Transient)
		}
	}
	// The validation message names the argument, never its value.
	_, e := post("/execute", `{"integration":"att","sessionId":"s","resource":"paymentMethod","action":"write","arguments":{"cardNumber":"4111111111111112","cvv":"12x"}}`, true)
	if !strings.Contains(e.Error.Message, "arguments.cardNumber") || strings.Contains(e.Error.Message, "4111111111111112") || strings.Contains(e.Error.Message, "12x") {
		t.Errorf("validation message %q", e.Error.Message)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, cfg := range []remote.Config{{}, {BaseURL: "ftp://x"}, {BaseURL: "http://"}, {BaseURL: "http://x", Timeout: -1}} {
		if _, err := remote.NewClient(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	if _, err := remote.NewHandler(remote.HandlerConfig{}); err == nil {
		t.Error("handler without registry: no error")
	}
}

// A logged-in answer linkflow cannot go on with (no session; credentials
// without an access token, as OAuth's snake_case spelling decodes) is a
// failed call, not credentials to keep; a challenge, or a session with or
// without credentials, is an answer.
func TestClientChecksLoginAnswers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, body string
		ok         bool
	}{
		{"empty", `{}`, false},
		{"snake_case credentials", `{"sessionId":"s","credentials":{"access_token":"at"}}`, false},
		{"credentials", `{"sessionId":"s","credentials":{"accessToken":"at"}}`, true},
		{"no credentials", `{"sessionId":"s"}`, true},
		{"challenge", `{"sessionId":"s","challenge":{"id":"c","type":"otp","message":"code?"}}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, tt.body) }))
			defer srv.Close()
			c, err := remote.NewClient(remote.Config{BaseURL: srv.URL, Integration: "x"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Login(context.Background(), operations.LoginRequest{Username: "u", Password: "p"})
			if pe := operations.AsError(err); tt.ok != (err == nil) || (err != nil && pe.Code != linkflow.FailureProviderUnavailable) {
				t.Errorf("login answered %s: %v, want ok %v (else PROVIDER_UNAVAILABLE)", tt.body, err, tt.ok)
			}
			// /continue-login answers for the session it was asked about.
			_, err = c.ContinueLogin(context.Background(), operations.ContinueRequest{SessionID: "s", ChallengeID: "c"})
			if ok := tt.ok || tt.name == "empty"; ok != (err == nil) {
				t.Errorf("continue-login answered %s: %v, want ok %v", tt.body, err, ok)
			}
		})
	}
}

// Both sides refuse a call of another protocol version: the handler a
// request that names one, the client an answer that does (a provider
// upgraded since its catalog was read).
func TestProtocolVersionMismatch(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	req, _ := http.NewRequest(http.MethodPost, b.server.URL+remote.PathLogin, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set(remote.HeaderProtocol, "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e remote.ErrorResponse
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if e.Error.Code != remote.CodeNotSupported {
		t.Fatalf("a version 2 request: %d %+v", resp.StatusCode, e.Error)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(remote.HeaderProtocol, "2")
		fmt.Fprint(w, `{"result":{}}`)
	}))
	defer srv.Close()
	c, err := remote.NewClient(remote.Config{BaseURL: srv.URL, Integration: "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Execute(context.Background(), operations.ExecuteRequest{SessionID: "s"})
	if pe := operations.AsError(err); err == nil || pe.Code != linkflow.FailureRejected || pe.Transient {
		t.Fatalf("an answer in version 2: %v, want a permanent REJECTED (the call may have run)", err)
	}
}

// A provider that panics is answered as one that failed without a typed
// error (transient), and the panic is in the handler's log with its stack,
// not a dropped connection and a stack on the standard logger.
func TestHandlerAnswersAPanic(t *testing.T) {
	t.Parallel()
	obs, logs := observer.New(zap.ErrorLevel)
	srv := serveOne(t, "panics", panicProvider{}, zap.New(obs))
	c, _ := remote.NewClient(remote.Config{BaseURL: srv.URL, Integration: "panics"})
	_, err := c.Execute(context.Background(), operations.ExecuteRequest{Integration: "panics", SessionID: "s", Resource: "thing", Action: "read"})
	if pe := operations.AsError(err); pe.Code != linkflow.FailureProviderUnavailable || !pe.Transient || pe.Message != "the provider failed" {
		t.Fatalf("a panicking provider: %v", err)
	}
	if l := logs.FilterMessage("provider panicked").All(); len(l) != 1 || !strings.Contains(fmt.Sprint(l[0].ContextMap()["stack"]), "panicProvider") {
		t.Fatalf("log: %v", logs.All())
	}
}

type panicProvider struct{ plainProvider }

func (panicProvider) Execute(context.Context, operations.ExecuteRequest) (json.RawMessage, error) {
	var m map[string]int
	m["boom"]++ // a provider's bug
	return nil, nil
}

// A client for many integrations closes a session whose id the provider
// changed when its challenge was answered, at that session's integration.
func TestClientForManyIntegrationsFollowsANewSessionID(t *testing.T) {
	t.Parallel()
	closed := make(chan string, 1)
	srv := serveOne(t, "twostep", twoStepProvider{closed: closed}, nil)
	ctx := context.Background()
	c, _ := remote.NewClient(remote.Config{BaseURL: srv.URL}) // no Integration: every one of the provider's
	res, err := c.Login(ctx, operations.LoginRequest{Integration: "twostep", Attempt: 1, Username: "u", Password: "p"})
	if err != nil || res.Challenge == nil {
		t.Fatalf("login: %+v, %v", res, err)
	}
	res, err = c.ContinueLogin(ctx, operations.ContinueRequest{Integration: "twostep", SessionID: res.SessionID, ChallengeID: res.Challenge.ID, Response: "123456"})
	if err != nil || res.SessionID != "after-challenge" {
		t.Fatalf("continue: %+v, %v", res, err)
	}
	if err := c.Close(ctx, res.SessionID); err != nil {
		t.Fatalf("close of the new session: %v", err)
	}
	if got := <-closed; got != "after-challenge" {
		t.Fatalf("closed %q", got)
	}
}

type twoStepProvider struct {
	plainProvider
	closed chan string
}

func (twoStepProvider) Login(context.Context, operations.LoginRequest) (*operations.LoginResult, error) {
	return &operations.LoginResult{SessionID: "before-challenge", Challenge: &operations.Challenge{ID: "c1", Type: "otp", Message: "code?"}}, nil
}

func (twoStepProvider) ContinueLogin(context.Context, operations.ContinueRequest) (*operations.LoginResult, error) {
	return &operations.LoginResult{SessionID: "after-challenge"}, nil
}

func (p twoStepProvider) Close(_ context.Context, id string) error {
	p.closed <- id
	return nil
}

// serveOne serves provider as the one integration id of a remote.Handler
// (log may be nil) until the test ends.
func serveOne(t *testing.T, id string, provider operations.Provider, log *zap.Logger) *httptest.Server {
	t.Helper()
	providers := operations.NewRegistry(nil)
	if err := providers.Register(operations.Integration{ID: id, DisplayName: id, Provider: provider,
		Resources: []operations.Resource{{Name: "thing", Actions: []operations.Action{{Name: "read", ResultKey: "thing"}}}}}); err != nil {
		t.Fatal(err)
	}
	h, err := remote.NewHandler(remote.HandlerConfig{Registry: providers, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
