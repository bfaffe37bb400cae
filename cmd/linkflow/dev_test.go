package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks/verify"
)

// seed001 is seed 001's example request verbatim, only its URLs changed.
const seed001 = `{
"integrationId": "tmobile",
"operations": [
{ "resource": "paymentMethod", "action": "read" },
{
"resource": "paymentMethod",
"action": "write",
"arguments": {
"cardNumber": "4111111111111111",
"expirationDate": "12/28",
"cvv": "123",
"nameOnCard": "John Doe",
"billingZip": "10001"
}
}
],
"webhookUrl": "%s",
"returnUrl": "https://your-app.com/done"
}`

// The foundation's promise: `linkflow dev` (embedded JetStream, a
// redis-server child) runs seed 001's example end to end over HTTP, and the
// webhook arrives signed.
func TestDevRunsSeedExampleEndToEnd(t *testing.T) {
	t.Parallel()
	const apiKey = "any string works as the dev key"
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, r.ContentLength)
		_, _ = r.Body.Read(b)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	defer receiver.Close()

	dataDir := t.TempDir()
	port := freeTCPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	dev := startProc(t, "dev", []string{"LINKFLOW_DEV_API_KEY=" + apiKey, "LINKFLOW_DEV_WEBHOOK_SECRET=" + secret,
		"LINKFLOW_DEV_ALLOWED_ORIGINS=http://localhost:3000"},
		"dev", "--data-dir", dataDir, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--public-url", base,
		"--nats-port", "-1", "--redis-port", "0", "--log-level", "warn")

	testenv.Eventually(t, 30*time.Second, "dev to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// A second dev on the same data directory stops at once, before it
	// starts servers on the first one's files or rewrites its dev.json.
	state, err := os.ReadFile(filepath.Join(dataDir, "dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, linkflowBin, "dev", "--data-dir", dataDir, "--http-addr", fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		"--nats-port", "-1", "--redis-port", "0", "--metrics-addr", "")
	second.Env = cleanEnv()
	out, err := second.CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "is running with the data directory") {
		t.Fatalf("a second dev on the data directory: %v\n%s", err, out)
	}
	if now, err := os.ReadFile(filepath.Join(dataDir, "dev.json")); err != nil || string(now) != string(state) {
		t.Fatalf("the second dev changed dev.json: %s %v", now, err)
	}
	// Metrics and pprof are on the metrics address only, never on the API's.
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if r := testenv.Do(t, "GET", base+path, "", nil); r.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s on the API address: %d, want 404", path, r.StatusCode)
		}
		if r := testenv.Do(t, "GET", "http://"+dev.metrics+path, "", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s on the metrics address: %d", path, r.StatusCode)
		}
	}
	created := testenv.Do(t, "POST", base+"/v1/links", apiKey, fmt.Sprintf(seed001, receiver.URL+"/webhook"))
	if created.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", created.StatusCode, created.Body)
	}
	var link struct {
		LinkID, ClaimCode, AppClipURL, ReturnURL, Status string
		Operations                                       []map[string]any
	}
	created.JSON(t, &link)
	if link.Status != "pending" || !strings.HasPrefix(link.AppClipURL, base+"/link/"+link.LinkID+"?code=") ||
		link.ReturnURL != "https://your-app.com/done?linkId="+link.LinkID || len(link.Operations) != 2 {
		t.Fatalf("201 body: %s", created.Body)
	}
	// The web drop-in may embed the page on the allowed origin.
	page := testenv.Do(t, "GET", link.AppClipURL, "", nil)
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors http://localhost:3000;") {
		t.Fatalf("hosted page CSP %q", csp)
	}
	claim := testenv.Do(t, "POST", base+"/v1/links/"+link.LinkID+"/claim", "",
		map[string]any{"claimCode": link.ClaimCode, "credentials": map[string]string{"username": "user_good", "password": "pass_good"}})
	if claim.StatusCode != http.StatusAccepted {
		t.Fatalf("claim: %d %s", claim.StatusCode, claim.Body)
	}
	var final struct {
		Status string
		Result struct {
			Operations []struct {
				Resource, Action string
				Data             map[string]json.RawMessage
			}
		}
	}
	testenv.Eventually(t, 30*time.Second, "the link to succeed", func() bool {
		testenv.Do(t, "GET", base+"/v1/links/"+link.LinkID, apiKey, nil).JSON(t, &final)
		return final.Status == "succeeded" || final.Status == "failed"
	})
	if final.Status != "succeeded" || len(final.Result.Operations) != 2 ||
		final.Result.Operations[1].Data["paymentMethod"] == nil {
		t.Fatalf("final link: %+v", final)
	}
	testenv.Eventually(t, 30*time.Second, "the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	req, body := got[0], bodies[0]
	mu.Unlock()
	v, err := verify.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := v.VerifyBody(body, req.Header)
	if err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	official, _ := standardwebhooks.NewWebhook(secret)
	if err := official.Verify(body, req.Header); err != nil {
		t.Fatalf("official Standard Webhooks library: %v", err)
	}
	if ev.Type != "link.succeeded" || !strings.Contains(string(body), link.LinkID) {
		t.Fatalf("webhook %s: %s", ev.Type, body)
	}
	if strings.Contains(dev.output(), "4111111111111111") || strings.Contains(string(body), "4111111111111111") {
		t.Fatal("the card number leaked into logs or the webhook")
	}
	// The API's requests above are counted on the metrics address.
	if n, err := dev.metric("linkflow_api_requests_total"); err != nil || n < 3 {
		t.Fatalf("linkflow_api_requests_total: %v, %v", n, err)
	}

	dev.stopCleanly(30 * time.Second)
	// Redis wrote its append-only file and stopped with dev.
	if _, err := os.Stat(filepath.Join(dataDir, "redis")); err != nil {
		t.Fatal(err)
	}
}

// dev with a relative --data-dir (its default is ./.linkflow): Redis and
// JetStream must find their files after changing directories.
func TestDevWithRelativeDataDir(t *testing.T) {
	t.Parallel()
	port := freeTCPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	dir := t.TempDir()
	p := startProcIn(t, dir, "dev-relative", []string{"LINKFLOW_DEV_API_KEY=a-long-enough-dev-key"},
		"dev", "--data-dir", "data", "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--public-url", base,
		"--nats-port", "-1", "--redis-port", "0", "--log-level", "info")
	testenv.Eventually(t, 30*time.Second, "dev to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	p.stopCleanly(30 * time.Second)
	if _, err := os.Stat(filepath.Join(dir, "data", "redis")); err != nil {
		t.Fatalf("redis data not under the relative data dir: %v", err)
	}
	// Whoever pressed Ctrl-C reads that dev heard, and that it is done.
	if out := p.output(); !saidStopping(out, "stopped; the data stays") {
		t.Fatalf("dev's last lines do not say it is stopping, then stopped (last):\n%s", out)
	}
}

// dev with encryption keys of its own and a Redis of its own behind a
// password: dev.json keeps the keys dev seals with, so the admin commands
// that read it (--data-dir) open what dev sealed, and the key an earlier dev
// sealed with, which the given ones lack; the banner does not print the
// Redis password.
func TestDevWithGivenKeysAndRedis(t *testing.T) {
	t.Parallel()
	rdb, rs := testenv.RedisSingle(t)
	const password = "a-redis-password-of-its-own"
	if err := rdb.ConfigSet(context.Background(), "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}
	keys := store.GenerateKey("given1")
	port := freeTCPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	dir := t.TempDir()
	// An earlier dev of this data dir sealed with a key of its own.
	earlier := store.GenerateKey("dev1")
	if err := (&embedded.DevState{EncryptionKey: earlier, APIKey: "a-long-enough-dev-key", WebhookSecret: store.NewWebhookSecret()}).Save(dir); err != nil {
		t.Fatal(err)
	}
	p := startProcIn(t, "", "dev-given", []string{"LINKFLOW_DEV_API_KEY=a-long-enough-dev-key", "LINKFLOW_ENCRYPTION_KEYS=" + keys},
		"dev", "--data-dir", dir, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--public-url", base,
		"--nats-port", "-1", "--redis-url", "redis://:"+password+"@"+rs.Addr, "--log-level", "warn")
	testenv.Eventually(t, 30*time.Second, "dev's banner", func() bool { return strings.Contains(p.output(), "linkflow dev is running") })
	if strings.Contains(p.output(), password) {
		t.Fatalf("dev printed the Redis password:\n%s", p.output())
	}
	// The given keys seal, and the earlier one still opens what it sealed.
	st, err := embedded.ReadDevState(dir)
	if err != nil || st.EncryptionKey != keys+","+earlier {
		t.Fatalf("dev.json keeps %q, not the keys dev runs with (%s, then the earlier %s): %v", st.EncryptionKey, keys, earlier, err)
	}
	cmd := exec.Command(linkflowBin, "keys", "create", "--org", "org_dev", "--data-dir", dir)
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keys create with dev's data dir: %v\n%s", err, out)
	}
}
