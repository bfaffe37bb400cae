package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/store"
)

// TestClaimCodeOnlyForLinkWriters: a key that may only read links must not
// learn a link's claim code (with it, it could claim the link with a provider
// account of its choosing and have the link's writes run there).
func TestClaimCodeOnlyForLinkWriters(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	ctx := context.Background()
	reader, _, err := s.Store.CreateAPIKey(ctx, s.OrgID, "reader", "", []string{linkflow.ScopeLinksRead})
	if err != nil {
		t.Fatal(err)
	}
	l := newLink(t, s, s.APIKey, nil)
	id := l.str("linkId")

	for _, path := range []string{"/v1/links/" + id, "/v1/links"} {
		r := s.Do(t, http.MethodGet, path, reader, nil)
		wantStatus(t, r, http.StatusOK)
		for _, leak := range []string{l.str("claimCode"), "claimCode", "appClipUrl"} {
			if leak != "" && containsBytes(r.Body, leak) {
				t.Fatalf("GET %s with links:read shows %q: %s", path, leak, r.Body)
			}
		}
	}
	// A key that may create links still sees them while the link is open.
	got := fetchLink(t, s, s.APIKey, id)
	if got.str("claimCode") != l.str("claimCode") || got.str("appClipUrl") != l.str("appClipUrl") {
		t.Fatalf("links:write key: claimCode %q appClipUrl %q, want the 201's", got.str("claimCode"), got.str("appClipUrl"))
	}
}

func containsBytes(b []byte, s string) bool {
	return len(s) > 0 && bytes.Contains(b, []byte(s))
}

// A token from the password grant stops working when the user changes
// (password, organizations) or its tokens are revoked.
func TestUserTokensDieWithTheUser(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	ctx := context.Background()
	user := func(pw string, orgs ...string) {
		t.Helper()
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Store.CreateUser(ctx, linkflow.User{Email: "ada@example.com", PasswordHash: string(hash), OrgIDs: orgs}); err != nil {
			t.Fatal(err)
		}
	}
	login := func(pw string) string {
		t.Helper()
		return mustToken(t, s, url.Values{"grant_type": {"password"}, "username": {"ada@example.com"}, "password": {pw}}).AccessToken
	}
	works := func(tok string) bool {
		t.Helper()
		return s.Do(t, http.MethodGet, "/v1/links", tok, nil).StatusCode == http.StatusOK
	}
	user("first password", s.OrgID)
	tok := login("first password")
	if !works(tok) {
		t.Fatal("a fresh token does not work")
	}
	user("second password", s.OrgID)
	if works(tok) {
		t.Fatal("the token survived a change of the password")
	}
	tok = login("second password")
	org2, _, _ := s.NewOrg(t, "Second")
	user("second password", org2)
	if works(tok) {
		t.Fatal("the token survived a change of the organizations")
	}
	tok = login("second password")
	if !works(tok) {
		t.Fatal("a fresh token does not work")
	}
	if err := s.Store.RevokeUserTokens(ctx, "Ada@Example.com"); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.Do(t, http.MethodGet, "/v1/links", tok, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	if err := s.Store.RevokeUserTokens(ctx, "nobody@example.com"); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("revoke an unknown user: %v", err)
	}
	// Tokens exchanged for API keys are not users' and keep working.
	keyTok := mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {s.APIKey}}).AccessToken
	if !works(keyTok) {
		t.Fatal("an API key's token does not work")
	}
}

// Ten wrong passwords from ten addresses do not lock the user out for
// everyone: failures count per user and address, under a much higher per-user
// ceiling.
func TestLoginFailuresPerUserAndAddress(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.LoginFailureLimit = api.Limit{Rate: 0.01, Burst: 3}
		c.UserLoginFailureLimit = api.Limit{Rate: 0.01, Burst: 14}
		c.AddressLoginFailureLimit = api.Limit{Rate: 0.01, Burst: 100}
	})
	createUser(t, s, "eve@example.com", "secret-pw", bcrypt.MinCost)
	login := func(from, pw string) *teststack.Response {
		t.Helper()
		return postFormFrom(t, s, "/v1/auth/token", from, url.Values{"grant_type": {"password"}, "username": {"eve@example.com"}, "password": {pw}})
	}
	for i := range 10 {
		wantError(t, login(fmt.Sprintf("198.51.100.%d", i+1), "guess"), http.StatusUnauthorized, "UNAUTHORIZED")
	}
	wantStatus(t, login("203.0.113.7", "secret-pw"), http.StatusOK)
	// One address guessing one user is stopped after its own budget...
	for range 3 {
		wantError(t, login("192.0.2.1", "guess"), http.StatusUnauthorized, "UNAUTHORIZED")
	}
	want429(t, login("192.0.2.1", "secret-pw"))
	wantStatus(t, login("203.0.113.7", "secret-pw"), http.StatusOK)
	// ...and all addresses together meet the user's ceiling of 14.
	wantError(t, login("203.0.113.8", "guess"), http.StatusUnauthorized, "UNAUTHORIZED")
	want429(t, login("203.0.113.9", "secret-pw"))
}

// Wrong bearer keys are limited per client address: 429 with Retry-After,
// after which even a right key from that address waits; other addresses do
// not.
func TestWrongKeysAreLimited(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.AuthFailureLimit = api.Limit{Rate: 0.01, Burst: 5}
	})
	for i := range 5 {
		r := doFrom(t, s, http.MethodGet, "/v1/links", fmt.Sprintf("lfk_guess%d", i), "198.51.100.1")
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, r.StatusCode)
		}
	}
	want429(t, doFrom(t, s, http.MethodGet, "/v1/links", "lfk_guess6", "198.51.100.1"))
	want429(t, doFrom(t, s, http.MethodGet, "/v1/links", s.APIKey, "198.51.100.1"))
	if r := doFrom(t, s, http.MethodGet, "/v1/links", s.APIKey, "198.51.100.2"); r.StatusCode != http.StatusOK {
		t.Fatalf("another address with the right key: %d", r.StatusCode)
	}
	// Right keys do not count.
	for range 10 {
		if r := doFrom(t, s, http.MethodGet, "/v1/links", s.APIKey, "198.51.100.3"); r.StatusCode != http.StatusOK {
			t.Fatalf("right key: %d", r.StatusCode)
		}
	}
}

// postFormFrom posts a form as if through a proxy for client addr.
func postFormFrom(t *testing.T, s *teststack.Stack, path, xff string, form url.Values) *teststack.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &teststack.Response{Response: resp, Body: b}
}

// A return URL is https (http in dev) or an app scheme the organization
// registered; nothing else, whatever a browser would make of it.
func TestReturnURLSchemes(t *testing.T) {
	t.Parallel()
	prod := newAPIStack(t, func(c *api.Config) { c.Dev = false })
	dev := newAPIStack(t, nil)
	create := func(s *teststack.Stack, returnURL string) *teststack.Response {
		t.Helper()
		return s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{
			"integrationId": "tmobile", "operations": []any{readOp()}, "returnUrl": returnURL})
	}
	for _, u := range []string{
		"intent://scan/#Intent;scheme=zxing;package=com.example;end", "ms-msdt:/id PCWDiagnostic", "search-ms:query=x",
		"view-source:https://example.com", "feed:javascript:alert(1)", "javascript:alert(1)", "jar:file:///x!/y",
		"myapp://callback", "file:///etc/passwd", "http://app.example.com/done",
	} {
		e := wantError(t, create(prod, u), http.StatusBadRequest, "BAD_REQUEST")
		if len(e.Error.Issues) != 1 || e.Error.Issues[0].Path != "returnUrl" {
			t.Errorf("returnUrl %s: issues %+v", u, e.Error.Issues)
		}
	}
	wantStatus(t, create(prod, "https://app.example.com/done"), http.StatusCreated)
	wantStatus(t, create(dev, "http://localhost:3000/done"), http.StatusCreated)

	// Registered, an app scheme works (seed 001's myapp://callback).
	ctx := context.Background()
	if err := prod.Store.UpdateOrg(ctx, prod.OrgID, linkflow.OrgUpdate{AppSchemes: &[]string{"myapp"}}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, create(prod, "myapp://callback"), http.StatusCreated)
	wantStatus(t, create(prod, "MyApp://callback"), http.StatusCreated)
	wantError(t, create(prod, "otherapp://callback"), http.StatusBadRequest, "BAD_REQUEST")
	// Other organizations have their own list.
	_, otherKey, _ := prod.NewOrg(t, "Other")
	wantError(t, prod.Do(t, http.MethodPost, "/v1/links", otherKey, map[string]any{
		"integrationId": "tmobile", "operations": []any{readOp()}, "returnUrl": "myapp://callback"}), http.StatusBadRequest, "BAD_REQUEST")
	// Dangerous schemes cannot be registered.
	for _, sc := range []string{"intent", "ms-msdt", "search-ms", "view-source", "feed", "javascript", "http", "https", "1x", "a b"} {
		if err := prod.Store.UpdateOrg(ctx, prod.OrgID, linkflow.OrgUpdate{AppSchemes: &[]string{sc}}); err == nil {
			t.Errorf("app scheme %q was accepted", sc)
		}
	}
}

// Every string a customer or end user sends is bounded, every JSON body's
// depth too, and a key repeated in one object is refused; lengths count
// characters, not bytes.
func TestUnboundedShapesRefused(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	l := newLink(t, s, s.APIKey, nil)
	id, code := l.str("linkId"), l.str("claimCode")

	// A 900,000-character username is not stored (nor sent in a webhook).
	long := strings.Repeat("u", 900_000)
	e := wantError(t, claimLink(t, s, id, code, long, "pass_good"), http.StatusBadRequest, "BAD_REQUEST")
	if len(e.Error.Issues) != 1 || e.Error.Issues[0].Path != "credentials.username" {
		t.Fatalf("issues %+v", e.Error.Issues)
	}
	if got := fetchLink(t, s, s.APIKey, id); got.str("status") != "pending" {
		t.Fatalf("the link was claimed: %s", got.str("status"))
	}
	form := url.Values{"code": {code}, "username": {strings.Repeat("u", 300)}, "password": {"pass_good"}}
	if p := postPage(t, s, "/link/"+id+"/login", form, map[string]string{"Sec-Fetch-Site": "same-origin"}); p.status != http.StatusBadRequest {
		t.Fatalf("hosted login with a 300-character username: %d", p.status)
	}
	wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+id+"/input", "",
		map[string]any{"claimCode": code, "challengeId": "c", "response": strings.Repeat("1", 1025)}), http.StatusBadRequest, "BAD_REQUEST")

	// Depth: 5,000 nested objects anywhere in a body.
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	_, connID := connect(t, s, nil, "user_good")
	r := s.Do(t, http.MethodPatch, "/v1/connections/"+connID, s.APIKey, `{"metadata":`+deep+`}`)
	if e := wantError(t, r, http.StatusBadRequest, "BAD_REQUEST"); !strings.Contains(e.Error.Message, "32 levels") {
		t.Fatalf("message %q", e.Error.Message)
	}
	ok32 := strings.Repeat(`{"a":`, 31) + "1" + strings.Repeat("}", 31) // the body's own object makes 32
	wantStatus(t, s.Do(t, http.MethodPatch, "/v1/connections/"+connID, s.APIKey, `{"metadata":`+ok32+`}`), http.StatusOK)

	// Duplicate keys, at the top and nested.
	for _, body := range []string{
		`{"integrationId":"tmobile","integrationId":"att","operations":[{"resource":"paymentMethod","action":"read"}]}`,
		`{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read","action":"write"}]}`,
	} {
		e := wantError(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, body), http.StatusBadRequest, "BAD_REQUEST")
		if !strings.Contains(e.Error.Message, "twice") {
			t.Fatalf("message %q", e.Error.Message)
		}
	}
	// The same key in two different objects is fine.
	wantStatus(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey,
		`{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"},{"resource":"paymentMethod","action":"read"}]}`), http.StatusCreated)

	// 1,000 characters of description fit, whatever their bytes; 1,001 do not.
	newLink(t, s, s.APIKey, map[string]any{"description": strings.Repeat("é", 1000)})
	e = wantError(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{
		"integrationId": "tmobile", "operations": []any{readOp()}, "description": strings.Repeat("é", 1001)}), http.StatusBadRequest, "BAD_REQUEST")
	if len(e.Error.Issues) != 1 || e.Error.Issues[0].Path != "description" {
		t.Fatalf("issues %+v", e.Error.Issues)
	}
	// A resource name of 10,000 characters is refused without being echoed.
	r = s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{
		"integrationId": "tmobile", "operations": []any{map[string]any{"resource": strings.Repeat("r", 10_000), "action": "read"}}})
	wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
	if len(r.Body) > 2000 {
		t.Fatalf("the error echoes the long name: %d bytes", len(r.Body))
	}
	// Query strings too.
	wantError(t, s.Do(t, http.MethodGet, "/v1/links?externalUserId="+strings.Repeat("x", 2000), s.APIKey, nil), http.StatusBadRequest, "BAD_REQUEST")
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/"+id+"/session?code="+strings.Repeat("x", 2000), "", nil), http.StatusBadRequest, "BAD_REQUEST")
}

// Wrong claim codes count against the guessing limits on every endpoint that
// takes a code, not only the claim: the address's budget, and the link's.
func TestWrongCodesCountEverywhere(t *testing.T) {
	t.Parallel()
	wrong := "clm_00000000000000000000000000000000"
	get := func(s *teststack.Stack, path string) int {
		t.Helper()
		return s.Do(t, http.MethodGet, path, "", nil).StatusCode
	}
	input := func(s *teststack.Stack, id, code string) int {
		t.Helper()
		return s.Do(t, http.MethodPost, "/v1/links/"+id+"/input", "",
			map[string]any{"claimCode": code, "challengeId": "c", "response": "1"}).StatusCode
	}
	// The address's budget: three wrong codes spread over the page, the
	// session and the input spend it, and then even the right code waits.
	s := newAPIStack(t, func(c *api.Config) { c.ClaimGuessLimit = api.Limit{Rate: 0.01, Burst: 3} })
	l := newLink(t, s, s.APIKey, nil)
	id, code := l.str("linkId"), l.str("claimCode")
	for i, status := range []int{get(s, "/link/"+id+"?code="+wrong), get(s, "/v1/links/"+id+"/session?code="+wrong), input(s, id, wrong)} {
		if status != http.StatusNotFound {
			t.Fatalf("wrong code %d: %d, want 404", i, status)
		}
	}
	if status := get(s, "/v1/links/"+id+"/session?code="+code); status != http.StatusTooManyRequests {
		t.Fatalf("after three wrong codes from this address: %d, want 429", status)
	}

	// The link's own counter (10 in 15 minutes by default; 3 here), with the
	// address limits off: wrong codes then get 429, the right code passes.
	s2 := teststack.NewStack(t, teststack.StackOptions{
		Store: func(c *store.Config) { c.ClaimGuessLimit = 3 },
		API: func(c *api.Config) {
			c.KeyLimit, c.ClientLimit, c.ClaimGuessLimit = api.NoLimit, api.NoLimit, api.NoLimit
		},
	})
	l = newLink(t, s2, s2.APIKey, nil)
	id, code = l.str("linkId"), l.str("claimCode")
	for range 3 {
		if status := get(s2, "/v1/links/"+id+"/session?code="+wrong); status != http.StatusNotFound {
			t.Fatalf("wrong code: %d", status)
		}
	}
	for _, status := range []int{get(s2, "/link/"+id+"?code="+wrong), input(s2, id, wrong), get(s2, "/v1/links/"+id+"/session?code="+wrong)} {
		if status != http.StatusTooManyRequests {
			t.Fatalf("a wrong code past the link's limit: %d, want 429", status)
		}
	}
	if status := get(s2, "/v1/links/"+id+"/session?code="+code); status != http.StatusOK {
		t.Fatalf("the right code: %d, want 200", status)
	}
}
