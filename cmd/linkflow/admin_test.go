package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// The admin commands against a real Redis: create an organization, add a
// narrower key, revoke it, rotate the webhook secret.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	_, rs := testenv.Redis(t)
	keys := store.GenerateKey("adm")
	stdin := ""
	runErr := func(args ...string) (string, error) {
		cmd := exec.Command(linkflowBin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(cmd.Environ(), "LINKFLOW_REDIS_URL="+rs.URL, "LINKFLOW_ENCRYPTION_KEYS="+keys)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := runErr(args...)
		if err != nil {
			t.Fatalf("linkflow %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	field := func(out, name string) string {
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, name); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("no %q in:\n%s", name, out)
		return ""
	}
	out := run("orgs", "create", "--name", "Acme")
	org, secret := field(out, "organization"), field(out, "webhook secret")
	if !strings.HasPrefix(org, "org_") || !strings.Contains(out, "api key       lfk_") || !store.ValidWebhookSecret(secret) {
		t.Fatalf("orgs create:\n%s", out)
	}
	out = run("keys", "create", "--org", org, "--scopes", "links:read")
	keyID := field(out, "api key id")
	if field(out, "scopes") != "links:read" {
		t.Fatalf("keys create:\n%s", out)
	}
	run("keys", "revoke", "--key-id", keyID)
	if out := run("orgs", "update", "--org", org, "--app-schemes", "myapp,com.acme.app"); !strings.Contains(out, `["myapp" "com.acme.app"]`) {
		t.Fatalf("orgs update:\n%s", out)
	}
	if out := run("orgs", "update", "--org", org, "--allowed-origins", "https://App.Acme.test,https://acme.test:8443,http://localhost:3000"); !strings.Contains(out, `["https://app.acme.test" "https://acme.test:8443" "http://localhost:3000"]`) ||
		!strings.Contains(out, "http://localhost:3000 is honoured only by an API running in dev mode") {
		t.Fatalf("orgs update --allowed-origins:\n%s", out)
	}
	if out, err := runErr("orgs", "update", "--org", org, "--allowed-origins", "https://acme.test/app"); err == nil || !strings.Contains(out, "path") {
		t.Fatalf("orgs update with an origin that has a path: %v\n%s", err, out)
	}
	stdin = "a long enough password\n"
	run("users", "create", "--email", "ops@acme.test", "--org", org, "--password-stdin")
	if out := run("users", "revoke-tokens", "--email", "ops@acme.test"); !strings.Contains(out, "revoked every access token of ops@acme.test") {
		t.Fatalf("users revoke-tokens:\n%s", out)
	}
	out = run("orgs", "rotate-webhook-secret", "--org", org)
	if next := field(out, "webhook secret"); !store.ValidWebhookSecret(next) || next == secret {
		t.Fatalf("rotate-webhook-secret:\n%s", out)
	}
}
