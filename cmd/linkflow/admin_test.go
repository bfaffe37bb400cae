package main

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// The admin commands against a real Redis: create an organization, add a
// narrower key, revoke it, rotate the webhook secret.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	rdb, rs := testenv.Redis(t)
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
	st := openStore(t, rdb, keys, "") // the commands' default prefix
	out := run("orgs", "create", "--name", "Acme")
	org, secret := field(out, "organization"), field(out, "webhook secret")
	if !strings.HasPrefix(org, "org_") || !strings.Contains(out, "api key         lfk_") || !store.ValidWebhookSecret(secret) {
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
	// Both changes or neither: a refused origin leaves the schemes as they were.
	if out, err := runErr("orgs", "update", "--org", org, "--app-schemes", "other", "--allowed-origins", "https://acme.test/app"); err == nil || !strings.Contains(out, "path") {
		t.Fatalf("orgs update with a refused origin: %v\n%s", err, out)
	}
	if o, err := st.Org(context.Background(), org); err != nil || !slices.Equal(o.AppSchemes, []string{"myapp", "com.acme.app"}) {
		t.Fatalf("after a refused orgs update the app schemes are %v (%v)", o.AppSchemes, err)
	}
	stdin = "a long enough password\n"
	if out, err := runErr("users", "create", "--email", "ops@acme.test", "--org", "org_doesnotexist", "--password-stdin"); err == nil || !strings.Contains(out, "org_doesnotexist does not exist") {
		t.Fatalf("users create of an unknown organization: %v\n%s", err, out)
	}
	if out, err := runErr("users", "revoke-tokens", "--email", "ops@acme.test"); err == nil {
		t.Fatalf("the refused users create made the user:\n%s", out)
	}
	if out := run("users", "create", "--email", "ops@acme.test", "--org", org, "--password-stdin"); !strings.Contains(out, "user ops@acme.test created, of "+org) {
		t.Fatalf("users create:\n%s", out)
	}
	if out := run("users", "create", "--email", "ops@acme.test", "--org", org, "--password-stdin"); !strings.Contains(out, "user ops@acme.test changed") ||
		!strings.Contains(out, "(was "+org+")") {
		t.Fatalf("users create of an existing user:\n%s", out)
	}
	if out := run("users", "revoke-tokens", "--email", "ops@acme.test"); !strings.Contains(out, "revoked every access token of ops@acme.test") {
		t.Fatalf("users revoke-tokens:\n%s", out)
	}
	out = run("orgs", "rotate-webhook-secret", "--org", org)
	if next := field(out, "webhook secret"); !store.ValidWebhookSecret(next) || next == secret {
		t.Fatalf("rotate-webhook-secret:\n%s", out)
	}
}

// Admin commands against linkflow dev need only its data directory: dev's
// Redis URL and encryption key come from its dev.json.
func TestAdminWithDevDataDir(t *testing.T) {
	t.Parallel()
	_, rs := testenv.Redis(t)
	dir := t.TempDir()
	st := &embedded.DevState{EncryptionKey: store.GenerateKey("dev1"), APIKey: "unused-dev-api-key", WebhookSecret: store.NewWebhookSecret(),
		RedisURL: rs.URL, NATSURL: "nats://unused", APIURL: "http://unused"}
	if err := st.Save(dir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(linkflowBin, "orgs", "create", "--name", "Acme")
	cmd.Env = append(cleanEnv(), "LINKFLOW_DATA_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "organization    org_") {
		t.Fatalf("orgs create with LINKFLOW_DATA_DIR: %v\n%s", err, out)
	}
	// Another Redis than dev's (here the same server by another name) takes
	// neither dev's key nor its NATS: a shell that exported dev's data
	// directory must not seal another deployment's secrets with dev's key.
	cmd = exec.Command(linkflowBin, "orgs", "create", "--name", "Acme", "--redis-url", strings.Replace(rs.URL, "127.0.0.1", "localhost", 1))
	cmd.Env = append(cleanEnv(), "LINKFLOW_DATA_DIR="+dir)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--encryption-keys (LINKFLOW_ENCRYPTION_KEYS) is required") {
		t.Fatalf("orgs create with another Redis than the data dir's: %v\n%s", err, out)
	}
	// linkflow listen takes both the API and its key from dev, or neither:
	// dev's key is not sent to another API.
	cmd = exec.Command(linkflowBin, "listen", "--api-url", "http://127.0.0.1:1", "--data-dir", dir)
	cmd.Env = cleanEnv()
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "give both --api-url and --api-key") {
		t.Fatalf("listen with --api-url only: %v\n%s", err, out)
	}
	// Without it, the error says what to give.
	cmd = exec.Command(linkflowBin, "orgs", "create", "--name", "Acme")
	cmd.Env = cleanEnv()
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "--data-dir") {
		t.Fatalf("orgs create without keys:\n%s", out)
	}
}

// cleanEnv is the test's environment without LINKFLOW_* variables, which
// would set flags.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LINKFLOW_") {
			env = append(env, kv)
		}
	}
	return env
}

// Every command has its own flags and help: -h shows them and exits 0, and
// the defaults it shows are the ones the command uses.
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"-h"}, []string{"linkflow listen", "linkflow orgs"}, nil},
		{[]string{"orgs", "-h"}, []string{"create", "update", "rotate-webhook-secret"}, []string{"unknown"}},
		{[]string{"keys", "-h"}, []string{"create", "revoke", "generate", "rotate-data"}, []string{"unknown"}},
		{[]string{"users", "--help"}, []string{"create", "revoke-tokens"}, []string{"unknown"}},
		{[]string{"orgs", "create", "-h"}, []string{"-name", "-data-dir", "-redis-url"}, []string{"-org ", "-overlap", "-app-schemes"}},
		{[]string{"orgs", "rotate-webhook-secret", "-h"}, []string{"-org", "-overlap"}, []string{"-name", "-app-schemes"}},
		{[]string{"keys", "revoke", "-h"}, []string{"-key-id"}, []string{"-scopes", "-name"}},
		{[]string{"keys", "create", "-h"}, []string{"-org", "-scopes", "-name"}, []string{"-key-id"}},
		{[]string{"keys", "generate", "-h"}, []string{"Usage: linkflow keys generate"}, []string{"="}},
		{[]string{"users", "create", "-h"}, []string{"-email", "-org", "-password-stdin"}, nil},
		{[]string{"users", "revoke-tokens", "-h"}, []string{"-email"}, []string{"-password-stdin"}},
		{[]string{"listen", "-h"}, []string{"-api-url", "-api-key", "-all"}, nil},
		{[]string{"dev", "-h"}, []string{`log format: json or console (default "console")`, "(dev only) (default true)",
			`address the HTTP API listens on (default "127.0.0.1:8080")`}, nil},
		{[]string{"api", "-h"}, []string{`log format: json or console (default "json")`}, []string{"webhook-allow-private"}},
		{[]string{"dispatcher", "-h"}, []string{"(dev only)\n"}, []string{"(dev only) (default true)"}},
	} {
		cmd := exec.Command(linkflowBin, tt.args...)
		cmd.Env = cleanEnv()
		b, err := cmd.CombinedOutput()
		out := string(b)
		if err != nil {
			t.Errorf("linkflow %s: %v (want exit 0)\n%s", strings.Join(tt.args, " "), err, out)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("linkflow %s lacks %q:\n%s", strings.Join(tt.args, " "), w, out)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(out, n) {
				t.Errorf("linkflow %s shows %q:\n%s", strings.Join(tt.args, " "), n, out)
			}
		}
	}
	// Mistakes exit 1 and say what to do.
	for _, args := range [][]string{{"orgs"}, {"orgs", "nope"}, {"orgs", "create"}, {"keys", "revoke"}} {
		cmd := exec.Command(linkflowBin, args...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err == nil || (!strings.Contains(string(out), "Usage:") && !strings.Contains(string(out), "is required")) {
			t.Errorf("linkflow %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// keys rotate-data whose scan of Redis stops (here at a value it cannot
// read: an organization's record that is not a hash) shows no per-key
// counts: a key the scan did not reach would look safe to retire.
func TestRotateDataThatStopsShowsNoCounts(t *testing.T) {
	t.Parallel()
	rdb, srv := testenv.RedisSingle(t)
	keys := store.GenerateKey("adm")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(linkflowBin, args...)
		cmd.Env = append(cleanEnv(), "LINKFLOW_REDIS_URL="+srv.URL, "LINKFLOW_ENCRYPTION_KEYS="+keys)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for range 3 {
		if out, err := run("orgs", "create", "--name", "Acme"); err != nil {
			t.Fatalf("orgs create: %v\n%s", err, out)
		}
	}
	if out, err := run("keys", "rotate-data"); err != nil || !strings.Contains(out, "key adm seals") {
		t.Fatalf("rotate-data: %v\n%s", err, out)
	}
	ctx := context.Background()
	orgs, err := rdb.Keys(ctx, "lf:{*}:org").Result()
	if err != nil || len(orgs) != 3 {
		t.Fatalf("org records %v (%v)", orgs, err)
	}
	if err := rdb.Set(ctx, orgs[1], "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	out, err := run("keys", "rotate-data")
	if err == nil || !strings.Contains(out, "did not finish") || strings.Contains(out, "seals") {
		t.Fatalf("rotate-data whose scan stops: %v\n%s", err, out)
	}
}

// A rotation of a webhook secret sealed with a key the admin is not given
// (retired too early) gives the organization a new secret and says this
// process could not open the old one (naming its key), rather than
// promising the overlap.
func TestRotateWebhookSecretSealedWithARetiredKey(t *testing.T) {
	t.Parallel()
	_, srv := testenv.RedisSingle(t)
	run := func(keys string, args ...string) string {
		t.Helper()
		cmd := exec.Command(linkflowBin, args...)
		cmd.Env = append(cleanEnv(), "LINKFLOW_REDIS_URL="+srv.URL, "LINKFLOW_ENCRYPTION_KEYS="+keys)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("linkflow %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run(store.GenerateKey("old"), "orgs", "create", "--name", "Acme")
	_, rest, _ := strings.Cut(out, "organization")
	org := strings.Fields(rest)[0]
	out = run(store.GenerateKey("new"), "orgs", "rotate-webhook-secret", "--org", org)
	if !strings.Contains(out, "webhook secret  whsec_") || !strings.Contains(out, "could not open the old one") ||
		!strings.Contains(out, `"old"`) || strings.Contains(out, "also with the old one") {
		t.Fatalf("rotate-webhook-secret:\n%s", out)
	}
}
