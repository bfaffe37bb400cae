package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/client"
)

// A connection from a successful link: read with and without secrets,
// refreshed, listed, changed and revoked.
func TestConnections(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	created := b.create(t, client.CreateLinkRequest{ExternalUserID: "conn-user"})
	b.claim(t, created, "user_good")
	id := *b.waitLink(t, created.LinkID, client.StatusSucceeded).ConnectionID

	c, err := b.lf.GetConnection(ctx, id, client.GetConnectionParams{RefreshPolicy: client.RefreshNone})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != id || c.Status != client.ConnectionHealthy || c.Username != "user_good" || c.ExternalUserID != "conn-user" ||
		!c.Credentials.Redacted || c.Credentials.AccessToken != "" || len(c.LinkIDs) != 1 || c.LinkIDs[0] != created.LinkID ||
		string(c.Metadata) != "{}" || c.CreatedAt == nil {
		t.Fatalf("connection %+v", c)
	}

	secret, err := b.lf.GetConnection(ctx, id, client.GetConnectionParams{IncludeSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Credentials.Redacted || secret.Credentials.AccessToken == "" || secret.Credentials.RefreshToken == "" {
		t.Fatalf("with secrets: %+v", secret.Credentials)
	}
	reads, err := b.lf.ListConnectionSecretReads(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if reads.ConnectionID != id || len(reads.Data) != 1 || !strings.HasPrefix(reads.Data[0].Subject, "key:") || reads.Data[0].RequestID == "" {
		t.Fatalf("secret reads %+v", reads)
	}

	refreshed, err := b.lf.GetConnection(ctx, id, client.GetConnectionParams{IncludeSecrets: true, RefreshPolicy: client.RefreshForce})
	if err != nil {
		t.Fatal(err)
	}
	if refreshed.LastRefreshedAt == nil || refreshed.Credentials.AccessToken == secret.Credentials.AccessToken {
		t.Fatalf("forced refresh: %+v", refreshed)
	}

	// A key without connections:secrets is refused secrets, not answered
	// without them.
	key, _, err := b.stack.Store.CreateAPIKey(ctx, b.stack.OrgID, "reader", "", []string{linkflow.ScopeConnectionsRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.lf.WithAPIKey(key).GetConnection(ctx, id, client.GetConnectionParams{IncludeSecrets: true}); !isCode(err, client.CodeForbidden) {
		t.Fatalf("secrets without the scope: %v", err)
	}

	other := b.create(t, client.CreateLinkRequest{IntegrationID: "att"})
	b.claim(t, other, "user_good")
	b.waitLink(t, other.LinkID, client.StatusSucceeded)
	var all []string
	for c, err := range b.lf.Connections(ctx, client.ListConnectionsParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, c.IntegrationID)
	}
	if strings.Join(all, ",") != "att,tmobile" {
		t.Fatalf("connections newest first: %v", all)
	}
	page, err := b.lf.ListConnections(ctx, client.ListConnectionsParams{IntegrationID: "tmobile", ExternalUserID: "conn-user", Status: client.ConnectionHealthy})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != id || page.NextCursor != nil || !page.Data[0].Credentials.Redacted {
		t.Fatalf("filtered list %+v, %v", page, err)
	}

	name, off := "Work phone", true
	c, err = b.lf.UpdateConnection(ctx, id, client.ConnectionPatch{Metadata: map[string]string{"plan": "gold"}, DisplayName: &name, Disabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]string
	if err := json.Unmarshal(c.Metadata, &meta); err != nil || meta["plan"] != "gold" || c.DisplayName != name || !c.Disabled {
		t.Fatalf("patched %+v", c)
	}
	// A nil map, typed in the interface, changes nothing.
	var none map[string]string
	if c, err = b.lf.UpdateConnection(ctx, id, client.ConnectionPatch{Metadata: none}); err != nil || !strings.Contains(string(c.Metadata), "gold") {
		t.Fatalf("a nil map: %+v %v", c, err)
	}
	on := false
	c, err = b.lf.UpdateConnection(ctx, id, client.ConnectionPatch{Metadata: map[string]any{}, Disabled: &on})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Metadata) != "{}" || c.DisplayName != name || c.Disabled {
		t.Fatalf("metadata cleared, the name kept, enabled: %+v", c)
	}

	gone, err := b.lf.DeleteConnection(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if gone.Status != client.ConnectionRevoked || gone.RevokedAt == 0 || !gone.RevokedAtProvider || gone.Credentials.ExpiresAt != nil {
		t.Fatalf("revoked %+v", gone)
	}
	if again, err := b.lf.DeleteConnection(ctx, id); err != nil || again.RevokedAt != gone.RevokedAt {
		t.Fatalf("deleting again: %+v, %v", again, err)
	}
	_, err = b.lf.GetConnection(ctx, id, client.GetConnectionParams{IncludeSecrets: true})
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusConflict {
		t.Fatalf("secrets of a revoked connection: %v", err)
	}
	if _, err := b.lf.GetConnection(ctx, "conn_"+strings.Repeat("0", 32), client.GetConnectionParams{}); !client.IsNotFound(err) {
		t.Fatalf("unknown connection: %v", err)
	}
}
