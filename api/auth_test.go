package api_test

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/teststack"
)

type tokenJSON struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	Orgs        []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"orgs"`
}

// postToken posts a form to POST /v1/auth/token.
func postToken(t *testing.T, s *teststack.Stack, form url.Values) *teststack.Response {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/v1/auth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &teststack.Response{Response: resp, Body: b}
}

func mustToken(t *testing.T, s *teststack.Stack, form url.Values) tokenJSON {
	t.Helper()
	r := postToken(t, s, form)
	wantStatus(t, r, http.StatusOK)
	var tok tokenJSON
	r.JSON(t, &tok)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("a token response may be cached")
	}
	return tok
}

func TestTokenClientCredentials(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) { c.TokenTTL = 30 * time.Minute })
	tok := mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {s.APIKey}})
	if !strings.HasPrefix(tok.AccessToken, "lft_") || tok.TokenType != "bearer" || tok.ExpiresIn != 1800 ||
		tok.Scope != "links:read links:write connections:read connections:secrets" ||
		len(tok.Orgs) != 1 || tok.Orgs[0].ID != s.OrgID || tok.Orgs[0].Name != "Test organization" {
		t.Fatalf("token %+v", tok)
	}
	// The token works like the key, and like the key it names no owner.
	l := newLink(t, s, tok.AccessToken, nil)
	if got := fetchLink(t, s, s.APIKey, l.str("linkId")); got["ownerUserId"] != nil || got["ownerEmail"] != nil {
		t.Fatalf("a link a key's token created has an owner: %v", got)
	}

	// Narrowed to links:read: reading works, writing is 403.
	ro := mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {s.APIKey}, "scope": {"links:read"}})
	if ro.Scope != "links:read" {
		t.Fatalf("scope %q", ro.Scope)
	}
	fetchLink(t, s, ro.AccessToken, l.str("linkId"))
	e := wantError(t, s.Do(t, http.MethodPost, "/v1/links", ro.AccessToken, map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}}), http.StatusForbidden, "FORBIDDEN")
	if !strings.Contains(e.Error.Message, "links:write") {
		t.Fatalf("403 message %q does not name the scope", e.Error.Message)
	}
	wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/cancel", ro.AccessToken, nil), http.StatusForbidden, "FORBIDDEN")

	// client_id may name the key or its organization; anything else is 401.
	ctx := context.Background()
	narrowKey, rec, err := s.Store.CreateAPIKey(ctx, s.OrgID, "reader", "", []string{linkflow.ScopeLinksRead})
	if err != nil {
		t.Fatal(err)
	}
	keyID := rec.ID
	mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {narrowKey}, "client_id": {keyID}})
	mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {narrowKey}, "client_id": {s.OrgID}})
	wantError(t, postToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {narrowKey}, "client_id": {"key_other"}}), http.StatusUnauthorized, "UNAUTHORIZED")

	// A key created with fewer scopes: its tokens cannot have more (403),
	// and it cannot write itself.
	wantError(t, postToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {narrowKey}, "scope": {"links:write"}}), http.StatusForbidden, "FORBIDDEN")
	wantError(t, s.Do(t, http.MethodPost, "/v1/links", narrowKey, map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}}), http.StatusForbidden, "FORBIDDEN")
	if got := mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {narrowKey}}); got.Scope != "links:read" {
		t.Fatalf("narrow key's token scope %q", got.Scope)
	}

	// HTTP Basic client authentication (RFC 6749 2.3.1) works too.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/auth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(keyID, narrowKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Basic auth: %d", resp.StatusCode)
	}

	// Errors: seed 000's envelope.
	for _, tc := range []struct {
		form   url.Values
		status int
		code   string
	}{
		{url.Values{}, 400, "BAD_REQUEST"},
		{url.Values{"grant_type": {"authorization_code"}}, 400, "BAD_REQUEST"},
		{url.Values{"grant_type": {"client_credentials"}}, 400, "BAD_REQUEST"},
		{url.Values{"grant_type": {"client_credentials"}, "client_secret": {s.APIKey}, "scope": {"links:admin"}}, 400, "BAD_REQUEST"},
		{url.Values{"grant_type": {"client_credentials"}, "client_secret": {"lfk_wrong"}}, 401, "UNAUTHORIZED"},
		// A token is not a client secret.
		{url.Values{"grant_type": {"client_credentials"}, "client_secret": {tok.AccessToken}}, 401, "UNAUTHORIZED"},
	} {
		wantError(t, postToken(t, s, tc.form), tc.status, tc.code)
	}
	// JSON is not the token endpoint's format.
	wantError(t, s.Do(t, http.MethodPost, "/v1/auth/token", "", map[string]any{"grant_type": "client_credentials"}), http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
}

func TestKeyRevocationIsImmediate(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	ctx := context.Background()
	key, rec, err := s.Store.CreateAPIKey(ctx, s.OrgID, "temp", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {key}})
	l := newLink(t, s, key, nil)
	fetchLink(t, s, tok.AccessToken, l.str("linkId"))
	// A second API process over the same Redis sees the revocation at once.
	other := s.NewAPI(t, nil, func(c *api.Config) { c.KeyLimit, c.ClientLimit = api.NoLimit, api.NoLimit })
	viaOther := func() int {
		req := httptest.NewRequest(http.MethodGet, "/v1/links/"+l.str("linkId"), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		other.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := viaOther(); code != http.StatusOK {
		t.Fatalf("the other API process before the revocation: %d", code)
	}
	if err := s.Store.RevokeAPIKey(ctx, s.OrgID, rec.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/"+l.str("linkId"), key, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/"+l.str("linkId"), tok.AccessToken, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	if code := viaOther(); code != http.StatusUnauthorized {
		t.Fatalf("the other API process after the revocation: %d", code)
	}
	wantError(t, postToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {key}}), http.StatusUnauthorized, "UNAUTHORIZED")
	// The organization's other key still works.
	fetchLink(t, s, s.APIKey, l.str("linkId"))
}

func TestTokenPasswordGrant(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	ctx := context.Background()
	org2, key2, _ := s.NewOrg(t, "Second org")
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateUser(ctx, linkflow.User{Email: "Ada@Example.com", PasswordHash: string(hash), OrgIDs: []string{s.OrgID, org2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateUser(ctx, linkflow.User{Email: "reader@example.com", PasswordHash: string(hash), OrgIDs: []string{org2},
		Scopes: []string{linkflow.ScopeLinksRead}}); err != nil {
		t.Fatal(err)
	}

	// Without client_id: the user's first organization; orgs lists all.
	tok := mustToken(t, s, url.Values{"grant_type": {"password"}, "username": {"ada@example.com"}, "password": {"correct horse"}})
	if len(tok.Orgs) != 2 || tok.Orgs[0].ID != s.OrgID || tok.Orgs[1].ID != org2 || tok.Orgs[1].Name != "Second org" {
		t.Fatalf("orgs %+v", tok.Orgs)
	}
	l := newLink(t, s, tok.AccessToken, nil)
	// A link created with a user's token records the user as its owner
	// (seed 000's owner); with an API key there is none.
	got := fetchLink(t, s, s.APIKey, l.str("linkId"))
	if got.str("ownerEmail") != "ada@example.com" || got.str("ownerUserId") != linkflow.UserID("ada@example.com") ||
		!strings.HasPrefix(got.str("ownerUserId"), "usr_") {
		t.Fatalf("owner of a link a user created: %v", got)
	}
	if byKey := fetchLink(t, s, s.APIKey, newLink(t, s, s.APIKey, nil).str("linkId")); byKey["ownerUserId"] != nil || byKey["ownerEmail"] != nil {
		t.Fatalf("a link an API key created has an owner: %v", byKey)
	}

	// client_id picks another of the user's organizations.
	tok2 := mustToken(t, s, url.Values{"grant_type": {"password"}, "username": {"ada@example.com"}, "password": {"correct horse"}, "client_id": {org2}})
	if tok2.Orgs[0].ID != org2 {
		t.Fatalf("selected org first: %+v", tok2.Orgs)
	}
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/"+l.str("linkId"), tok2.AccessToken, nil), http.StatusNotFound, "NOT_FOUND")
	l2 := newLink(t, s, tok2.AccessToken, nil)
	fetchLink(t, s, key2, l2.str("linkId"))
	wantError(t, postToken(t, s, url.Values{"grant_type": {"password"}, "username": {"ada@example.com"}, "password": {"correct horse"}, "client_id": {"org_elsewhere"}}), http.StatusForbidden, "FORBIDDEN")

	// A user's scopes bound the token's.
	ro := mustToken(t, s, url.Values{"grant_type": {"password"}, "username": {"reader@example.com"}, "password": {"correct horse"}})
	if ro.Scope != "links:read" {
		t.Fatalf("reader scope %q", ro.Scope)
	}
	wantError(t, s.Do(t, http.MethodPost, "/v1/links", ro.AccessToken, map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}}), http.StatusForbidden, "FORBIDDEN")
	wantError(t, postToken(t, s, url.Values{"grant_type": {"password"}, "username": {"reader@example.com"}, "password": {"correct horse"}, "scope": {"links:write"}}), http.StatusForbidden, "FORBIDDEN")

	// Bad credentials: 401, the same for an unknown user.
	bad := wantError(t, postToken(t, s, url.Values{"grant_type": {"password"}, "username": {"ada@example.com"}, "password": {"wrong"}}), http.StatusUnauthorized, "UNAUTHORIZED")
	unknown := wantError(t, postToken(t, s, url.Values{"grant_type": {"password"}, "username": {"nobody@example.com"}, "password": {"wrong"}}), http.StatusUnauthorized, "UNAUTHORIZED")
	if bad.Error.Message != unknown.Error.Message {
		t.Fatalf("wrong password %q vs unknown user %q", bad.Error.Message, unknown.Error.Message)
	}
	e := wantError(t, postToken(t, s, url.Values{"grant_type": {"password"}}), http.StatusBadRequest, "BAD_REQUEST")
	if len(e.Error.Issues) != 2 {
		t.Fatalf("issues %v", e.Error.Issues)
	}
}

func TestLoginFailuresAreLimited(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) {
		c.LoginFailureLimit = api.Limit{Rate: 0.01, Burst: 3}
		c.AddressLoginFailureLimit = api.Limit{Rate: 0.01, Burst: 4}
	})
	createUser(t, s, "eve@example.com", "secret-pw", bcrypt.MinCost)
	form := url.Values{"grant_type": {"password"}, "username": {"eve@example.com"}, "password": {"guess"}}
	// Successes do not count.
	for range 5 {
		mustToken(t, s, url.Values{"grant_type": {"password"}, "username": {"eve@example.com"}, "password": {"secret-pw"}})
	}
	for range 3 {
		wantError(t, postToken(t, s, form), http.StatusUnauthorized, "UNAUTHORIZED")
	}
	r := postToken(t, s, url.Values{"grant_type": {"password"}, "username": {"eve@example.com"}, "password": {"secret-pw"}})
	wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_REQUESTS")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	// This address may still try other users and keys: one more failure
	// spends its own budget, and then client credentials wait too.
	wantError(t, postToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {"lfk_wrong"}}), http.StatusUnauthorized, "UNAUTHORIZED")
	wantError(t, postToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {s.APIKey}}), http.StatusTooManyRequests, "TOO_MANY_REQUESTS")
}

// Parallel guesses cannot share a failure budget's last unit: each attempt
// reserves its failure before the password is judged, so at most the
// budget's burst of them are judged wrong, and the attempts refused give
// back what their other buckets reserved.
func TestParallelLoginGuessesMeetTheBudget(t *testing.T) {
	t.Parallel()
	const pairBurst, addrBurst = 3, 100
	s := newAPIStack(t, func(c *api.Config) {
		c.LoginFailureLimit = api.Limit{Rate: 0.01, Burst: pairBurst}
		c.AddressLoginFailureLimit = api.Limit{Rate: 0.01, Burst: addrBurst}
		c.UserLoginFailureLimit = api.Limit{Rate: 0.01, Burst: 1000}
		c.ClientLimit = api.NoLimit
	})
	// bcrypt's default cost: judging a password takes tens of milliseconds,
	// the window a peek left open.
	createUser(t, s, "pat@example.com", "secret-pw", bcrypt.DefaultCost)
	const guesses = 20
	codes := postTokensAtOnce(t, s, guesses, url.Values{"grant_type": {"password"}, "username": {"pat@example.com"}, "password": {"guess"}})
	judged := 0
	for _, c := range codes {
		switch c {
		case http.StatusUnauthorized:
			judged++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a guess answered %d", c)
		}
	}
	// At most the budget; fewer when a guess whose clock reading came
	// later reached Redis first (GCRA judges each by its own reading).
	if judged == 0 || judged > pairBurst {
		t.Fatalf("%d of %d parallel guesses were judged, want 1 to %d (the budget)", judged, guesses, pairBurst)
	}
	// The address's budget holds only the guesses judged: the refused ones
	// gave theirs back.
	res, err := s.Store.RateLimit(context.Background(), linkflow.RateLimitRequest{Name: "login:" + serverAddr(t, s.URL),
		Rate: 0.01, Burst: addrBurst, Mode: linkflow.RateLimitPeek})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Remaining != addrBurst-judged {
		t.Fatalf("the address's failure budget has %d left, want %d (%d failures)", res[0].Remaining, addrBurst-judged, judged)
	}
	// A grant refused for another reason than its password gives back
	// what it reserved: the address's budget is as it was (another user,
	// whose own budgets are fresh).
	for range 3 {
		wantError(t, postToken(t, s, url.Values{"grant_type": {"password"}, "username": {"sam@example.com"}, "password": {"any"},
			"scope": {"no-such-scope"}}), http.StatusBadRequest, "BAD_REQUEST")
	}
	if res, err := s.Store.RateLimit(context.Background(), linkflow.RateLimitRequest{Name: "login:" + serverAddr(t, s.URL),
		Rate: 0.01, Burst: addrBurst, Mode: linkflow.RateLimitPeek}); err != nil || res[0].Remaining != addrBurst-judged {
		t.Fatalf("after three refused grants the address's budget has %+v %v, want %d left", res, err, addrBurst-judged)
	}
}

// postTokensAtOnce sends n token requests of form together and returns
// their statuses.
func postTokensAtOnce(t *testing.T, s *teststack.Stack, n int, form url.Values) []int {
	t.Helper()
	return atOnce(n, func() int {
		resp, err := http.PostForm(s.URL+"/v1/auth/token", form)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	})
}

// atOnce runs n calls of f together (each waits for all to be started) and
// returns what they answered.
func atOnce(n int, f func() int) []int {
	out := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = f()
		})
	}
	close(start)
	wg.Wait()
	return out
}

// serverAddr is the client address a test's requests to u come from (the
// server's own, on loopback), as the API names it in a bucket.
func serverAddr(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(pu.Host).Addr()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// A fleet asking for tokens with its API key at once is not refused by the
// address's failure budget: API keys are judged first and counted after.
func TestParallelTokenRequestsOfAFleet(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) { c.AddressLoginFailureLimit = api.Limit{Rate: 0.01, Burst: 2} })
	codes := postTokensAtOnce(t, s, 10, url.Values{"grant_type": {"client_credentials"}, "client_secret": {s.APIKey}})
	for _, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a token request of the fleet answered %d", c)
		}
	}
}

// A password is not judged while its failure budget cannot be counted (here
// a bucket holding a value of another type: Redis answers, with an error),
// and what the other budgets reserved for it goes back; an API key, judged
// first and counted after, still gets its token.
func TestLoginRefusedWhileItsBudgetCannotBeCounted(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) {
		c.AddressLoginFailureLimit = api.Limit{Rate: 0.01, Burst: 30}
		c.LoginFailureLimit = api.Limit{Rate: 0.01, Burst: 1}
	})
	createUser(t, s, "pat@example.com", "secret-pw", bcrypt.MinCost)
	ctx := context.Background()
	bucket := cmp.Or(s.RedisEnv.Prefix, "lf:") + "rl:{login:" + serverAddr(t, s.URL) + "}" // the store's key
	if err := s.Redis.HSet(ctx, bucket, "not", "a bucket").Err(); err != nil {
		t.Fatal(err)
	}
	right := url.Values{"grant_type": {"password"}, "username": {"pat@example.com"}, "password": {"secret-pw"}}
	for range 3 {
		r := postToken(t, s, right)
		wantError(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
		if ra := r.Header.Get("Retry-After"); ra == "" {
			t.Fatal("no Retry-After")
		}
	}
	mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {s.APIKey}})
	// Once the bucket can be read, the user's budget of one is whole: the
	// refused attempts gave back what they had reserved.
	if err := s.Redis.Del(ctx, bucket).Err(); err != nil {
		t.Fatal(err)
	}
	mustToken(t, s, right)
}

// createUser makes a user of the stack's organization with password pw,
// hashed at bcrypt cost.
func createUser(t *testing.T, s *teststack.Stack, email, pw string, cost int) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateUser(context.Background(), linkflow.User{Email: email, PasswordHash: string(hash), OrgIDs: []string{s.OrgID}}); err != nil {
		t.Fatal(err)
	}
}
