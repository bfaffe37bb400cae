package api_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/linkflow/linkflow/store"
)

// TestClaimCodeOnlyForLinkWriters: a key that may only read links must not
// learn a link's claim code (with it, it could claim the link with a provider
// account of its choosing and have the link's writes run there).
func TestClaimCodeOnlyForLinkWriters(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	ctx := context.Background()
	reader, _, err := s.Store.CreateAPIKey(ctx, s.OrgID, "reader", "", []string{store.ScopeLinksRead})
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
		if err := s.Store.CreateUser(ctx, store.User{Email: "ada@example.com", PasswordHash: string(hash), OrgIDs: orgs}); err != nil {
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
	if err := s.Store.RevokeUserTokens(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke an unknown user: %v", err)
	}
	// Tokens exchanged for API keys are not users' and keep working.
	keyTok := mustToken(t, s, url.Values{"grant_type": {"client_credentials"}, "client_secret": {s.APIKey}}).AccessToken
	if !works(keyTok) {
		t.Fatal("an API key's token does not work")
	}
}
