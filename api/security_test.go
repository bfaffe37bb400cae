package api_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

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
