package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/webhooks/verify"
)

// connView is a connection as the API shows it.
type connView struct {
	linkflow.ConnectionView
	Credentials struct {
		Redacted     bool    `json:"redacted"`
		AccessToken  *string `json:"accessToken"`
		RefreshToken *string `json:"refreshToken"`
		TokenType    string  `json:"tokenType"`
		ExpiresAt    *int64  `json:"expiresAt"`
	} `json:"credentials"`
}

func (c connView) creds() operations.Credentials {
	var cr operations.Credentials
	if c.Credentials.AccessToken != nil {
		cr.AccessToken = *c.Credentials.AccessToken
	}
	if c.Credentials.RefreshToken != nil {
		cr.RefreshToken = *c.Credentials.RefreshToken
	}
	return cr
}

// refreshGate wraps an integration's provider: it counts Refresh calls, can
// fail them, and can hold them until released.
type refreshGate struct {
	operations.Provider
	calls atomic.Int64
	fail  atomic.Bool
	hold  atomic.Pointer[chan struct{}]
}

func (g *refreshGate) Refresh(ctx context.Context, c operations.Credentials) (*operations.Credentials, error) {
	g.calls.Add(1)
	if h := g.hold.Load(); h != nil {
		<-*h
	}
	if g.fail.Load() {
		return nil, operations.Unavailable("the provider is down for maintenance")
	}
	return g.Provider.(operations.Refresher).Refresh(ctx, c)
}

func (g *refreshGate) Revoke(ctx context.Context, c operations.Credentials) error {
	return g.Provider.(operations.Revoker).Revoke(ctx, c)
}

// connStackOptions turns rate limits off and registers, on top of the
// sandbox: tmobile behind a refreshGate, and "plainmobile", tmobile's
// sandbox without Refresh or Revoke.
func connStackOptions(gate *refreshGate, opts teststack.StackOptions) teststack.StackOptions {
	opts.API = func(c *api.Config) {
		c.KeyLimit, c.ClientLimit, c.ClaimGuessLimit, c.LoginFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit, api.NoLimit
	}
	opts.Registry = func(r *operations.Registry) {
		in, _ := r.Integration(sandbox.TMobile)
		gated, plain := *in, *in
		gate.Provider = in.Provider
		gated.Provider = gate
		plain.ID, plain.Provider = "plainmobile", struct{ operations.Provider }{in.Provider}
		for _, i := range []operations.Integration{gated, plain} {
			if err := r.Register(i); err != nil {
				panic(err)
			}
		}
	}
	return opts
}

// connect runs a link to success and returns its id and connection id.
func connect(t *testing.T, s *teststack.Stack, body map[string]any, user string) (linkID, connID string) {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["integrationId"]; !ok {
		body["integrationId"] = sandbox.TMobile
	}
	if _, ok := body["operations"]; !ok {
		body["operations"] = []any{map[string]any{"resource": "paymentMethod", "action": "read"}}
	}
	r := s.Do(t, http.MethodPost, "/v1/links", s.APIKey, body)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create link: %d %s", r.StatusCode, r.Body)
	}
	var l struct {
		LinkID    string `json:"linkId"`
		ClaimCode string `json:"claimCode"`
	}
	r.JSON(t, &l)
	claim := s.Do(t, http.MethodPost, "/v1/links/"+l.LinkID+"/claim", "",
		map[string]any{"claimCode": l.ClaimCode, "credentials": map[string]string{"username": user, "password": sandbox.PasswordGood}})
	if claim.StatusCode != http.StatusAccepted {
		t.Fatalf("claim: %d %s", claim.StatusCode, claim.Body)
	}
	var done struct {
		Status       string `json:"status"`
		ConnectionID string `json:"connectionId"`
	}
	testenv.Eventually(t, 15*time.Second, "link "+l.LinkID+" to succeed", func() bool {
		s.Do(t, http.MethodGet, "/v1/links/"+l.LinkID, s.APIKey, nil).JSON(t, &done)
		if done.Status == "failed" || done.Status == "expired" {
			t.Fatalf("link %s %s", l.LinkID, done.Status)
		}
		return done.Status == "succeeded"
	})
	return l.LinkID, done.ConnectionID
}

// getConn reads a connection and checks the status code.
func getConn(t *testing.T, s *teststack.Stack, key, id, query string, status int) (connView, *teststack.Response) {
	t.Helper()
	path := "/v1/connections/" + id
	if query != "" {
		path += "?" + query
	}
	r := s.Do(t, http.MethodGet, path, key, nil)
	if r.StatusCode != status {
		t.Fatalf("GET %s: %d %s, want %d", path, r.StatusCode, r.Body, status)
	}
	var c connView
	if status == http.StatusOK {
		r.JSON(t, &c)
	}
	return c, r
}

// wantCode checks an error envelope's status and code.
func wantCode(t *testing.T, r *teststack.Response, status int, code string) {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	if r.StatusCode != status || e.Error.Code != code {
		t.Fatalf("%s %s: %d %s, want %d %s", r.Request.Method, r.Request.URL, r.StatusCode, r.Body, status, code)
	}
}

func TestConnectionLifecycle(t *testing.T) {
	t.Parallel()
	gate := &refreshGate{}
	s := teststack.NewStack(t, connStackOptions(gate, teststack.StackOptions{NoDispatcher: true}))
	ctx := context.Background()

	// Create on success.
	link1, id := connect(t, s, map[string]any{"externalUserId": "ext-1"}, sandbox.UserGood)
	c, redacted := getConn(t, s, s.APIKey, id, "", http.StatusOK)
	if !strings.HasPrefix(id, "conn_") || c.ID != id || c.IntegrationID != sandbox.TMobile || c.Username != sandbox.UserGood ||
		c.ExternalUserID != "ext-1" || c.Status != linkflow.ConnHealthy || c.Disabled || string(c.Metadata) != "{}" ||
		c.CreatedAt == nil || c.UpdatedAt == nil || c.LastRefreshedAt == nil || len(c.LinkIDs) != 1 || c.LinkIDs[0] != link1 {
		t.Fatalf("connection after the link: %s", redacted.Body)
	}
	// Redaction: a flag, the secret fields absent, the rest shown.
	if !c.Credentials.Redacted || c.Credentials.AccessToken != nil || c.Credentials.RefreshToken != nil ||
		c.Credentials.TokenType != "bearer" || c.Credentials.ExpiresAt == nil {
		t.Fatalf("redacted credentials: %s", redacted.Body)
	}
	secret, sr := getConn(t, s, s.APIKey, id, "include_secrets=true", http.StatusOK)
	creds := secret.creds()
	if secret.Credentials.Redacted || !strings.HasPrefix(creds.AccessToken, "sbx_at_") || !strings.HasPrefix(creds.RefreshToken, "sbx_rt_") {
		t.Fatalf("secret read: %+v", secret.Credentials)
	}
	// No cache keeps what a key reads, tokens least of all; nor any other
	// answer, a refusal before the key is looked at included.
	refused := s.Do(t, http.MethodGet, "/v1/connections/"+id+"?nope=1", s.APIKey, nil)
	for _, r := range []*teststack.Response{sr, refused} {
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("%d answer's Cache-Control: %q", r.StatusCode, cc)
		}
	}
	if refused.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unknown parameter: %d", refused.StatusCode)
	}
	list := s.Do(t, http.MethodGet, "/v1/connections", s.APIKey, nil)
	for _, body := range [][]byte{redacted.Body, list.Body} {
		if strings.Contains(string(body), creds.AccessToken) || strings.Contains(string(body), creds.RefreshToken) ||
			strings.Contains(string(body), "sbx_") {
			t.Fatalf("a token in a response without include_secrets: %s", body)
		}
	}
	// The token is good for an hour: auto does not refresh.
	again, _ := getConn(t, s, s.APIKey, id, "include_secrets=true&refresh_policy=auto", http.StatusOK)
	if again.creds() != creds || gate.calls.Load() != 0 {
		t.Fatalf("auto refreshed a fresh token (%d calls)", gate.calls.Load())
	}

	// Scopes: include_secrets without connections:secrets is refused.
	readOnly, _, err := s.Store.CreateAPIKey(ctx, s.OrgID, "read only", "", []string{linkflow.ScopeConnectionsRead})
	if err != nil {
		t.Fatal(err)
	}
	_, r := getConn(t, s, readOnly, id, "include_secrets=true", http.StatusForbidden)
	wantCode(t, r, http.StatusForbidden, linkflow.EForbidden)
	if strings.Contains(string(r.Body), creds.AccessToken) {
		t.Fatal("a refused secret read leaked the token")
	}
	if c, _ := getConn(t, s, readOnly, id, "include_secrets=false", http.StatusOK); !c.Credentials.Redacted {
		t.Fatal("read-only key saw secrets")
	}
	wantCode(t, s.Do(t, http.MethodPatch, "/v1/connections/"+id, readOnly, map[string]any{"disabled": true}), http.StatusForbidden, linkflow.EForbidden)
	wantCode(t, s.Do(t, http.MethodDelete, "/v1/connections/"+id, readOnly, nil), http.StatusForbidden, linkflow.EForbidden)
	linksOnly, _, _ := s.Store.CreateAPIKey(ctx, s.OrgID, "links", "", []string{linkflow.ScopeLinksRead, linkflow.ScopeLinksWrite})
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections/"+id, linksOnly, nil), http.StatusForbidden, linkflow.EForbidden)
	wantCode(t, s.Do(t, http.MethodDelete, "/v1/connections/"+id, linksOnly, nil), http.StatusForbidden, linkflow.EForbidden)
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections/"+id+"?include_secrets=maybe", s.APIKey, nil), http.StatusBadRequest, linkflow.EBadRequest)
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections/"+id+"?refresh_policy=sometimes", s.APIKey, nil), http.StatusBadRequest, linkflow.EBadRequest)
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections?include_secrets=true", s.APIKey, nil), http.StatusBadRequest, linkflow.EBadRequest)
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections/conn_nope", s.APIKey, nil), http.StatusNotFound, linkflow.ENotFound)

	// Every secret read is recorded; refused and redacted reads are not.
	var reads struct {
		Data []struct {
			At        int64  `json:"at"`
			Subject   string `json:"subject"`
			KeyID     string `json:"keyId"`
			Address   string `json:"address"`
			RequestID string `json:"requestId"`
		} `json:"data"`
	}
	rr := s.Do(t, http.MethodGet, "/v1/connections/"+id+"/secret-reads", readOnly, nil)
	rr.JSON(t, &reads)
	if rr.StatusCode != http.StatusOK || len(reads.Data) != 2 || !strings.HasPrefix(reads.Data[0].Subject, "key:key_") ||
		reads.Data[0].Address != "127.0.0.1" || !strings.HasPrefix(reads.Data[0].RequestID, "req_") || reads.Data[0].At == 0 {
		t.Fatalf("secret reads: %d %s", rr.StatusCode, rr.Body)
	}

	// Reconnect: the same username keeps the id and lists both links.
	link2, id2 := connect(t, s, nil, sandbox.UserGood)
	if id2 != id {
		t.Fatalf("reconnect made %s, want %s", id2, id)
	}
	c2, _ := getConn(t, s, s.APIKey, id, "include_secrets=true", http.StatusOK)
	if len(c2.LinkIDs) != 2 || c2.LinkIDs[0] != link1 || c2.LinkIDs[1] != link2 || c2.creds().AccessToken == creds.AccessToken {
		t.Fatalf("after reconnect: links %v, token renewed %v", c2.LinkIDs, c2.creds().AccessToken != creds.AccessToken)
	}
	creds = c2.creds()
	// A link naming the connection must log in as its username.
	r = s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{"integrationId": sandbox.TMobile, "connectionId": id,
		"operations": []any{map[string]any{"resource": "paymentMethod", "action": "read"}}})
	var named struct {
		LinkID    string `json:"linkId"`
		ClaimCode string `json:"claimCode"`
	}
	r.JSON(t, &named)
	wantCode(t, s.Do(t, http.MethodPost, "/v1/links/"+named.LinkID+"/claim", "", map[string]any{"claimCode": named.ClaimCode,
		"credentials": map[string]string{"username": "someone_else", "password": sandbox.PasswordGood}}), http.StatusUnprocessableEntity, linkflow.EUnprocessable)

	// Another account is another connection; lists filter and page.
	_, other := connect(t, s, map[string]any{"integrationId": "plainmobile", "externalUserId": "ext-2"}, "user_other")
	if other == id {
		t.Fatal("another account shares the connection")
	}
	listIDs := func(query string) []string {
		t.Helper()
		r := s.Do(t, http.MethodGet, "/v1/connections?"+query, s.APIKey, nil)
		var page struct {
			Data       []connView `json:"data"`
			NextCursor *string    `json:"nextCursor"`
		}
		r.JSON(t, &page)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("list %s: %d %s", query, r.StatusCode, r.Body)
		}
		var ids []string
		for _, c := range page.Data {
			ids = append(ids, c.ID)
		}
		if page.NextCursor != nil {
			ids = append(ids, "next:"+*page.NextCursor)
		}
		return ids
	}
	got := listIDs("limit=1")
	if len(got) != 2 || got[0] != other || !strings.HasPrefix(got[1], "next:") {
		t.Fatalf("first page %v", got)
	}
	got = listIDs("limit=1&cursor=" + strings.TrimPrefix(got[1], "next:"))
	if len(got) != 1 || got[0] != id {
		t.Fatalf("second and last page %v", got)
	}
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections?cursor="+id, s.APIKey, nil), http.StatusBadRequest, linkflow.EBadRequest)
	if got := listIDs("externalUserId=ext-2"); len(got) != 1 || got[0] != other {
		t.Fatalf("by external user %v", got)
	}
	if got := listIDs("integrationId=tmobile&status=healthy"); len(got) != 1 || got[0] != id {
		t.Fatalf("by integration and status %v", got)
	}
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections?status=sleepy", s.APIKey, nil), http.StatusBadRequest, linkflow.EBadRequest)

	// PATCH: metadata replaced as a whole, displayName, disabled.
	r = s.Do(t, http.MethodPatch, "/v1/connections/"+id, s.APIKey, map[string]any{
		"metadata": map[string]any{"plan": "gold", "seats": 3}, "displayName": "Work phone", "disabled": true})
	var patched connView
	r.JSON(t, &patched)
	if r.StatusCode != http.StatusOK || string(patched.Metadata) != `{"plan":"gold","seats":3}` || patched.DisplayName != "Work phone" ||
		!patched.Disabled || !patched.Credentials.Redacted || strings.Contains(string(r.Body), creds.AccessToken) {
		t.Fatalf("patch: %d %s", r.StatusCode, r.Body)
	}
	// Disabled: readable, not refreshable.
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections/"+id+"?refresh_policy=force", s.APIKey, nil), http.StatusConflict, linkflow.EConflict)
	r = s.Do(t, http.MethodPatch, "/v1/connections/"+id, s.APIKey, map[string]any{"metadata": nil, "disabled": false, "colour": "red"})
	wantCode(t, r, http.StatusBadRequest, linkflow.EBadRequest)
	if !strings.Contains(string(r.Body), `"colour"`) {
		t.Fatalf("unknown field not named: %s", r.Body)
	}
	wantCode(t, s.Do(t, http.MethodPatch, "/v1/connections/"+id, s.APIKey, map[string]any{"metadata": []int{1}}), http.StatusBadRequest, linkflow.EBadRequest)
	wantCode(t, s.Do(t, http.MethodPatch, "/v1/connections/"+id, s.APIKey, map[string]any{"metadata": map[string]string{"x": strings.Repeat("a", linkflow.MaxConnectionMetadata)}}), http.StatusBadRequest, linkflow.EBadRequest)
	r = s.Do(t, http.MethodPatch, "/v1/connections/"+id, s.APIKey, map[string]any{"metadata": nil, "disabled": false})
	r.JSON(t, &patched)
	if r.StatusCode != http.StatusOK || string(patched.Metadata) != "{}" || patched.Disabled || patched.DisplayName != "Work phone" {
		t.Fatalf("patch back: %d %s", r.StatusCode, r.Body)
	}

	// A provider that cannot refresh: force is refused, auto just reads.
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections/"+other+"?refresh_policy=force", s.APIKey, nil), http.StatusUnprocessableEntity, linkflow.EUnprocessable)
	getConn(t, s, s.APIKey, other, "refresh_policy=auto", http.StatusOK)

	// A DELETE takes no body: a field in one is refused, and nothing is
	// revoked.
	wantCode(t, s.Do(t, http.MethodDelete, "/v1/connections/"+id, s.APIKey, map[string]any{"reason": "moved"}),
		http.StatusBadRequest, linkflow.EBadRequest)
	if c, _ := getConn(t, s, s.APIKey, id, "", http.StatusOK); c.Status == linkflow.ConnRevoked {
		t.Fatal("a refused DELETE revoked the connection")
	}
	// DELETE: revoked at the provider, secrets gone, a tombstone kept.
	r = s.Do(t, http.MethodDelete, "/v1/connections/"+id, s.APIKey, nil)
	var tomb connView
	r.JSON(t, &tomb)
	if r.StatusCode != http.StatusOK || tomb.Status != linkflow.ConnRevoked || tomb.RevokedAtProvider == nil || !*tomb.RevokedAtProvider ||
		tomb.RevokedAt == nil || tomb.Credentials.Redacted || tomb.Credentials.AccessToken != nil || tomb.StatusMessage == "" {
		t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
	}
	g, err := s.Sandbox.Grant(ctx, creds)
	if err != nil || g == nil || g.Status != sandbox.GrantRevoked {
		t.Fatalf("grant at the provider after delete: %+v %v", g, err)
	}
	if c, err := s.Store.Connection(ctx, s.OrgID, id); err != nil || c.Credentials != nil {
		t.Fatal("sealed credentials outlived the delete")
	}
	wantCode(t, s.Do(t, http.MethodGet, "/v1/connections/"+id+"?include_secrets=true", s.APIKey, nil), http.StatusConflict, linkflow.EConflict)
	if c, _ := getConn(t, s, s.APIKey, id, "", http.StatusOK); c.Status != linkflow.ConnRevoked {
		t.Fatalf("tombstone status %s", c.Status)
	}
	wantCode(t, s.Do(t, http.MethodPatch, "/v1/connections/"+id, s.APIKey, map[string]any{"disabled": true}), http.StatusConflict, linkflow.EConflict)
	if r := s.Do(t, http.MethodDelete, "/v1/connections/"+id, s.APIKey, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("second delete: %d %s", r.StatusCode, r.Body)
	}
	// Without a revoker the credentials are deleted here only.
	r = s.Do(t, http.MethodDelete, "/v1/connections/"+other, s.APIKey, nil)
	r.JSON(t, &tomb)
	if r.StatusCode != http.StatusOK || tomb.Status != linkflow.ConnRevoked || tomb.RevokedAtProvider == nil || *tomb.RevokedAtProvider {
		t.Fatalf("delete without a revoker: %d %s", r.StatusCode, r.Body)
	}
}

// hookLog receives webhooks and keeps the verified events.
type hookLog struct {
	mu     sync.Mutex
	events []*verify.Event
	bodies [][]byte
}

func newHookLog(t *testing.T, secret string) (*hookLog, string) {
	t.Helper()
	v, err := verify.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := &hookLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := v.VerifyBody(body, r.Header)
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		if err == nil {
			h.events = append(h.events, ev)
		}
		h.mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL + "/hooks"
}

func (h *hookLog) find(typ string) *verify.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.events {
		if ev.Type == typ {
			return ev
		}
	}
	return nil
}

// A link that makes an 'error' connection healthy again (the end user
// logged in anew after a refresh failed) sends connection.healthy, beside
// its link.succeeded; the event log lists it.
func TestLinkRepairingAConnectionSendsConnectionHealthy(t *testing.T) {
	t.Parallel()
	gate := &refreshGate{}
	s := teststack.NewStack(t, connStackOptions(gate, teststack.StackOptions{}))
	hooks, hookURL := newHookLog(t, s.WebhookSecret)
	_, id := connect(t, s, map[string]any{"webhookUrl": hookURL}, sandbox.UserGood)
	gate.fail.Store(true)
	if failed, raw := getConn(t, s, s.APIKey, id, "refresh_policy=force", http.StatusOK); failed.Status != linkflow.ConnError {
		t.Fatalf("after a failed refresh: %s", raw.Body)
	}
	gate.fail.Store(false)
	link, again := connect(t, s, map[string]any{"webhookUrl": hookURL}, sandbox.UserGood)
	if again != id {
		t.Fatalf("the second link made connection %s, want %s", again, id)
	}
	var ev *verify.Event
	testenv.Eventually(t, 10*time.Second, "a connection.healthy webhook", func() bool {
		ev = hooks.find(linkflow.EventConnectionHealthy)
		return ev != nil
	})
	var data connView
	if err := json.Unmarshal(ev.Data, &data); err != nil || data.ID != id || data.Status != linkflow.ConnHealthy ||
		!data.Credentials.Redacted || strings.Contains(string(ev.Body), "sbx_") || !slices.Contains(data.LinkIDs, link) {
		t.Fatalf("connection.healthy event: %s", ev.Body)
	}
	var events struct {
		Data []struct {
			Type string `json:"type"`
		} `json:"data"`
	}
	testenv.Eventually(t, 10*time.Second, "four events in the log", func() bool {
		s.Do(t, http.MethodGet, "/v1/events", s.APIKey, nil).JSON(t, &events)
		return len(events.Data) >= 4
	})
	var types []string
	for _, e := range events.Data {
		types = append(types, e.Type)
	}
	slices.Sort(types)
	if got := strings.Join(types, " "); got != "connection.error connection.healthy link.succeeded link.succeeded" {
		t.Fatalf("event log: %s", got)
	}
}

func TestConnectionRefresh(t *testing.T) {
	t.Parallel()
	gate := &refreshGate{}
	obs, logs := observer.New(zap.DebugLevel)
	log := zap.New(zapcore.NewTee(obs, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()))
	// Tokens live 30s: within auto's minute from the start.
	s := teststack.NewStack(t, connStackOptions(gate, teststack.StackOptions{Logger: log,
		Sandbox: func(c *sandbox.Config) { c.AccessTokenTTL = 30 * time.Second }}))
	ctx := context.Background()
	hooks, hookURL := newHookLog(t, s.WebhookSecret)
	_, id := connect(t, s, map[string]any{"webhookUrl": hookURL}, sandbox.UserGood)

	first, _ := getConn(t, s, s.APIKey, id, "include_secrets=true&refresh_policy=none", http.StatusOK)
	if gate.calls.Load() != 0 {
		t.Fatal("none refreshed")
	}
	auto, _ := getConn(t, s, s.APIKey, id, "include_secrets=true", http.StatusOK) // auto is the default
	if gate.calls.Load() != 1 || auto.creds().AccessToken == first.creds().AccessToken || *auto.LastRefreshedAt < *first.LastRefreshedAt {
		t.Fatalf("auto with 30s left: %d calls", gate.calls.Load())
	}
	forced, _ := getConn(t, s, s.APIKey, id, "include_secrets=true&refresh_policy=force", http.StatusOK)
	if gate.calls.Load() != 2 || forced.creds().AccessToken == auto.creds().AccessToken || forced.Status != linkflow.ConnHealthy {
		t.Fatalf("force: %d calls", gate.calls.Load())
	}
	if g, _ := s.Sandbox.Grant(ctx, forced.creds()); g == nil || g.Refreshes != 2 || g.Status != sandbox.GrantActive {
		t.Fatalf("grant at the provider: %+v", g)
	}

	// A failed refresh: status error, a connection.error webhook.
	gate.fail.Store(true)
	failed, raw := getConn(t, s, s.APIKey, id, "refresh_policy=force", http.StatusOK)
	if failed.Status != linkflow.ConnError || !strings.Contains(failed.StatusMessage, string(linkflow.FailureProviderUnavailable)) || strings.Contains(string(raw.Body), "sbx_") {
		t.Fatalf("after a failed refresh: %s", raw.Body)
	}
	var evErr *verify.Event
	testenv.Eventually(t, 10*time.Second, "a connection.error webhook", func() bool {
		evErr = hooks.find(linkflow.EventConnectionError)
		return evErr != nil
	})
	var data connView
	if err := json.Unmarshal(evErr.Data, &data); err != nil || data.ID != id || data.Status != linkflow.ConnError ||
		!data.Credentials.Redacted || strings.Contains(string(evErr.Body), "sbx_") || strings.Contains(evErr.ID, ".") {
		t.Fatalf("connection.error event %s: %s", evErr.ID, evErr.Body)
	}
	// Its delivery and attempts are listed by the event's id (a
	// connection's events have no link to list them under).
	var evDel struct {
		EventID  string                 `json:"eventId"`
		Delivery *webhooks.DeliveryView `json:"delivery"`
		Data     []webhooks.Attempt     `json:"data"`
	}
	testenv.Eventually(t, 10*time.Second, "the connection.error attempt logged", func() bool {
		r := s.Do(t, http.MethodGet, "/v1/events/"+evErr.ID+"/deliveries", s.APIKey, nil)
		if r.StatusCode == http.StatusNotFound {
			return false
		}
		r.JSON(t, &evDel)
		return len(evDel.Data) == 1 && evDel.Delivery.Status == linkflow.DeliverySucceeded
	})
	if evDel.EventID != evErr.ID || evDel.Delivery.Type != string(linkflow.EventConnectionError) || evDel.Delivery.LinkID != "" ||
		evDel.Data[0].WebhookID != evErr.ID || evDel.Data[0].StatusCode == nil || evDel.Data[0].Trigger != "initial" {
		t.Fatalf("connection.error deliveries: %+v", evDel)
	}
	// A good refresh afterwards: healthy, a connection.healthy webhook.
	gate.fail.Store(false)
	healed, _ := getConn(t, s, s.APIKey, id, "include_secrets=true&refresh_policy=force", http.StatusOK)
	if healed.Status != linkflow.ConnHealthy || healed.StatusMessage != "" || healed.creds().AccessToken == forced.creds().AccessToken {
		t.Fatalf("after a good refresh: %+v", healed.ConnectionView)
	}
	testenv.Eventually(t, 10*time.Second, "a connection.healthy webhook", func() bool {
		return hooks.find(linkflow.EventConnectionHealthy) != nil
	})
	// Both are in the organization's event log too.
	var events struct {
		Data []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"data"`
	}
	s.Do(t, http.MethodGet, "/v1/events", s.APIKey, nil).JSON(t, &events)
	var types []string
	for _, e := range events.Data {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, " "); got != "link.succeeded connection.error connection.healthy" || events.Data[1].ID != evErr.ID {
		t.Fatalf("event log: %s", got)
	}

	// 20 concurrent forced reads: one provider call, one token for all.
	// The provider holds the refresh until the other 19 are waiting for it.
	before := gate.calls.Load()
	hold := make(chan struct{})
	gate.hold.Store(&hold)
	waiting := func() int {
		return logs.FilterMessage("waiting for a refresh in flight").FilterField(zap.String("connection_id", id)).Len()
	}
	const n = 20
	var wg sync.WaitGroup
	tokens := make([]string, n)
	for i := range n {
		wg.Go(func() {
			r, err := testenv.Send(http.MethodGet, s.URL+"/v1/connections/"+id+"?refresh_policy=force&include_secrets=true", s.APIKey, nil)
			if err != nil {
				t.Errorf("concurrent read: %v", err)
				return
			}
			var c connView
			if err := json.Unmarshal(r.Body, &c); err != nil || r.StatusCode != http.StatusOK {
				t.Errorf("concurrent read: %d %s", r.StatusCode, r.Body)
				return
			}
			tokens[i] = c.creds().AccessToken
		})
	}
	testenv.Eventually(t, 10*time.Second, "19 reads to wait for the refresh in flight", func() bool { return waiting() == n-1 })
	close(hold)
	wg.Wait()
	gate.hold.Store(nil)
	if got := gate.calls.Load() - before; got != 1 {
		t.Fatalf("%d provider calls for %d concurrent forced reads", got, n)
	}
	for i, tok := range tokens {
		if tok == "" || tok != tokens[0] || tok == healed.creds().AccessToken {
			t.Fatalf("read %d got token %q, read 0 %q", i, tok, tokens[0])
		}
	}
	var reads struct {
		Data []json.RawMessage `json:"data"`
	}
	s.Do(t, http.MethodGet, "/v1/connections/"+id+"/secret-reads?limit=1000", s.APIKey, nil).JSON(t, &reads)
	if len(reads.Data) != 4+n {
		t.Fatalf("%d secret reads recorded, want %d", len(reads.Data), 4+n)
	}
}

// TestKeyRotation: records sealed with an old key stay readable while a new
// key is added, rotate-data re-seals them, and the old key can then go.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	oldSpec, newSpec := store.GenerateKey("old"), store.GenerateKey("new")
	keyring := func(spec string) *store.Keyring {
		kr, err := store.ParseKeyring(spec)
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	gate := &refreshGate{}
	s := teststack.NewStack(t, connStackOptions(gate, teststack.StackOptions{NoDispatcher: true,
		Store: func(c *store.Config) { c.Keyring = keyring(oldSpec) }}))
	ctx := context.Background()
	_, connID := connect(t, s, nil, sandbox.UserGood)
	secret, _ := getConn(t, s, s.APIKey, connID, "include_secrets=true", http.StatusOK)
	// A pending link holds a sealed claim code and sealed card arguments.
	r := s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{"integrationId": sandbox.TMobile,
		"operations": []any{map[string]any{"resource": "paymentMethod", "action": "write", "arguments": goodCard()}}})
	var pending struct {
		LinkID    string `json:"linkId"`
		ClaimCode string `json:"claimCode"`
	}
	r.JSON(t, &pending)
	// An idempotency record holds a sealed response (with a claim code).
	idem := linkflow.NewLink{OrgID: s.OrgID, IntegrationID: sandbox.TMobile, ExpiresIn: time.Hour,
		Operations:     []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}},
		IdempotencyKey: "rotation-1", RequestHash: "h1",
		Response: func(l *linkflow.Link) ([]byte, error) { return []byte(`{"linkId":"` + l.ID + `"}`), nil }}
	first, err := s.Store.CreateLink(ctx, idem)
	if err != nil {
		t.Fatal(err)
	}
	sealedWith := func() map[string]int {
		sealed, err := s.Store.RotateData(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		return sealed.ByKey
	}
	if got := sealedWith(); got["old"] < 5 || len(got) != 1 { // credentials, claim code, arguments, webhook secret, idempotency record
		t.Fatalf("sealed with %v before rotation", got)
	}

	// Another API process on the same Redis, with the given keyring.
	serve := func(spec string) (*store.Store, *teststack.Stack) {
		st, err := store.New(store.Config{Redis: s.Redis, Keyring: keyring(spec), Prefix: s.RedisEnv.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s.NewAPI(t, st, nil))
		t.Cleanup(hs.Close)
		view := *s
		view.URL = hs.URL
		return st, &view
	}
	readsAll := func(st *store.Store, via *teststack.Stack, phase string) {
		t.Helper()
		c, _ := getConn(t, via, s.APIKey, connID, "include_secrets=true&refresh_policy=none", http.StatusOK)
		if c.creds() != secret.creds() {
			t.Fatalf("%s: credentials read back differently", phase)
		}
		var l struct {
			ClaimCode string `json:"claimCode"`
		}
		via.Do(t, http.MethodGet, "/v1/links/"+pending.LinkID, s.APIKey, nil).JSON(t, &l)
		if l.ClaimCode != pending.ClaimCode {
			t.Fatalf("%s: claim code %q", phase, l.ClaimCode)
		}
		org, err := st.Org(ctx, s.OrgID)
		if err != nil || org.WebhookSecrets[0] != s.WebhookSecret {
			t.Fatalf("%s: webhook secret: %v", phase, err)
		}
		if again, err := st.CreateLink(ctx, idem); err != nil || !again.Replayed || string(again.Response) != string(first.Response) {
			t.Fatalf("%s: idempotent replay: %+v %v", phase, again, err)
		}
	}
	both, viaBoth := serve(newSpec + "," + oldSpec)
	readsAll(both, viaBoth, "new key added")
	sealed, err := both.RotateData(ctx, true)
	if err != nil || sealed.Resealed < 5 || sealed.ByKey["new"] < 5 || len(sealed.ByKey) != 1 { // as above
		t.Fatalf("rotate-data: %+v %v", sealed, err)
	}
	if got := sealedWith(); got["new"] < 5 || len(got) != 1 {
		t.Fatalf("sealed with %v after rotation", got)
	}
	onlyNew, viaNew := serve(newSpec)
	readsAll(onlyNew, viaNew, "old key retired")
	if c, err := s.Store.Connection(ctx, s.OrgID, connID); err != nil || !c.Unreadable || c.Credentials != nil {
		t.Fatalf("the old key alone: %+v %v, want the connection without the credentials it cannot open", c, err)
	}
	// The stack's own API has the old key alone (a process not rolled yet,
	// or given a retired key): the connection is read without secrets;
	// its secrets and its deletion answer 503, naming no secret, since a
	// process given the key could revoke it; a link can renew it. A process
	// with the new key deletes it, revoking it at the provider.
	if c, _ := getConn(t, s, s.APIKey, connID, "", http.StatusOK); c.Status != "healthy" {
		t.Fatalf("read without secrets: %+v", c)
	}
	_, r = getConn(t, s, s.APIKey, connID, "include_secrets=true", http.StatusServiceUnavailable)
	if wantCode(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"); !strings.Contains(string(r.Body), "encryption key") ||
		r.Header.Get("Retry-After") == "" {
		t.Fatalf("secrets sealed with a key not given: %s", r.Body)
	}
	if r := s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{"integrationId": sandbox.TMobile, "connectionId": connID,
		"operations": []any{map[string]any{"resource": "paymentMethod", "action": "read"}}}); r.StatusCode != http.StatusCreated {
		t.Fatalf("a link renewing it: %d %s", r.StatusCode, r.Body)
	}
	if del := s.Do(t, http.MethodDelete, "/v1/connections/"+connID, s.APIKey, nil); del.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("delete by a process without the key: %d %s", del.StatusCode, del.Body)
	}
	del := viaNew.Do(t, http.MethodDelete, "/v1/connections/"+connID, s.APIKey, nil)
	var tomb struct {
		Status            string `json:"status"`
		RevokedAtProvider *bool  `json:"revokedAtProvider"`
	}
	del.JSON(t, &tomb)
	if del.StatusCode != http.StatusOK || tomb.Status != "revoked" || tomb.RevokedAtProvider == nil || !*tomb.RevokedAtProvider {
		t.Fatalf("delete by a process with the key: %d %s", del.StatusCode, del.Body)
	}

	// The pending link's claim code is sealed with the new key now: the
	// old-key API answers the link 503 (retry: a key roll may be under way),
	// fails a list rather than leaving the link out of it, and still serves
	// the end user, who holds the code.
	r = s.Do(t, http.MethodGet, "/v1/links/"+pending.LinkID, s.APIKey, nil)
	if wantCode(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"); r.Header.Get("Retry-After") != "5" ||
		!strings.Contains(string(r.Body), "encryption key") || strings.Contains(string(r.Body), pending.ClaimCode) {
		t.Fatalf("a link sealed with a key not given: %s", r.Body)
	}
	wantCode(t, s.Do(t, http.MethodGet, "/v1/links?limit=100", s.APIKey, nil), http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	if _, err := s.Store.CreateLink(ctx, idem); !errors.Is(err, linkflow.ErrUnknownKey) {
		t.Fatalf("an idempotent replay sealed with a key not given: %v, want ErrUnknownKey (apiError's 503)", err)
	}
	if r := s.Do(t, http.MethodGet, "/v1/links/"+pending.LinkID+"/session?code="+pending.ClaimCode, "", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("the end user's session read by a process without the key: %d %s", r.StatusCode, r.Body)
	}
	// A key that may only read links never sees claim codes: its reads
	// need no key for them.
	reader, _, err := both.CreateAPIKey(ctx, s.OrgID, "reader", "", []string{linkflow.ScopeLinksRead})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/links/" + pending.LinkID, "/v1/links?limit=100"} {
		if r := s.Do(t, http.MethodGet, path, reader, nil); r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s with links:read by a process without the key: %d %s", path, r.StatusCode, r.Body)
		}
	}
	// (The link renewing the connection above was sealed with the old key:
	// the process given both keys lists them all.)
	if r := viaBoth.Do(t, http.MethodGet, "/v1/links?limit=100", s.APIKey, nil); r.StatusCode != http.StatusOK ||
		!strings.Contains(string(r.Body), pending.ClaimCode) {
		t.Fatalf("the list by a process given both keys: %d %s", r.StatusCode, r.Body)
	}
	// An app-scheme returnUrl is checked against the organization's record,
	// which that process cannot open (its webhook secret is sealed with the
	// new key): 503, not a 400 telling the caller to register the scheme.
	r = s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{"integrationId": sandbox.TMobile, "returnUrl": "myapp://done",
		"operations": []any{map[string]any{"resource": "paymentMethod", "action": "read"}}})
	wantCode(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	// The end user declines it through the process without the key.
	if r := s.Do(t, http.MethodPost, "/v1/links/"+pending.LinkID+"/decline", "", map[string]any{"claimCode": pending.ClaimCode}); r.StatusCode != http.StatusOK {
		t.Fatalf("decline by a process without the key: %d %s", r.StatusCode, r.Body)
	}
}
