package client_test

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/client"
)

// Both grants of the token endpoint, and the tokens used as keys.
func TestTokens(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	// client_credentials: an API key for a token, narrowed to links:read.
	tok, err := b.endUser.IssueToken(ctx, client.TokenRequest{GrantType: client.GrantClientCredentials, ClientSecret: b.stack.APIKey, Scope: "links:read"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "bearer" || tok.ExpiresIn <= 0 || tok.Scope != "links:read" || len(tok.Orgs) != 1 || tok.Orgs[0].ID != b.stack.OrgID {
		t.Fatalf("token %+v", tok)
	}
	reader := b.lf.WithAPIKey(tok.AccessToken)
	if _, err := reader.ListLinks(ctx, client.ListLinksParams{}); err != nil {
		t.Fatalf("links:read token lists links: %v", err)
	}
	if _, err := reader.CreateLink(ctx, client.CreateLinkRequest{IntegrationID: "tmobile", Operations: []client.OperationInput{readOp}}); !isCode(err, client.CodeForbidden) {
		t.Fatalf("links:read token creates: %v", err)
	}
	// The client's own key is never sent to the token endpoint: a client
	// whose key is a token still exchanges an API key.
	if _, err := reader.IssueToken(ctx, client.TokenRequest{GrantType: client.GrantClientCredentials, ClientSecret: b.stack.APIKey}); err != nil {
		t.Fatal(err)
	}

	// password: an organization user.
	org2, _, _ := b.stack.NewOrg(t, "Second organization")
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.stack.Store.CreateUser(ctx, linkflow.User{Email: "ada@example.com", PasswordHash: string(hash), OrgIDs: []string{b.stack.OrgID, org2}}); err != nil {
		t.Fatal(err)
	}
	tok, err = b.endUser.IssueToken(ctx, client.TokenRequest{GrantType: client.GrantPassword, Username: "ada@example.com", Password: "correct horse", ClientID: org2})
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Orgs) != 2 || tok.Orgs[0].ID != org2 || tok.Orgs[1].ID != b.stack.OrgID {
		t.Fatalf("password token orgs %+v", tok.Orgs)
	}
	if _, err := b.lf.WithAPIKey(tok.AccessToken).ListProviders(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.endUser.IssueToken(ctx, client.TokenRequest{GrantType: client.GrantPassword, Username: "ada@example.com", Password: "wrong"}); !isCode(err, client.CodeUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := b.endUser.IssueToken(ctx, client.TokenRequest{GrantType: "refresh_token"}); !isCode(err, client.CodeBadRequest) {
		t.Fatalf("unsupported grant: %v", err)
	}
}
