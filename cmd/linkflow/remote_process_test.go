package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
)

// An integration in another process: `linkflow sandbox-provider` serves the
// sandbox over the remote provider protocol, and a `linkflow dev` without
// its built-in sandbox registers it from its catalog URL and runs a link
// through it.
// devKey is the dev API key of the process tests.
const devKey = "remote-test-dev-key"

func TestRemoteProviderProcess(t *testing.T) {
	t.Parallel()
	_, rs := testenv.Redis(t)
	provAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	startProc(t, "sandbox-provider", nil, "sandbox-provider", "--http-addr", provAddr, "--redis-url", rs.URL,
		"--secret", "s3cret", "--log-level", "warn")

	port := freeTCPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startProc(t, "dev", []string{"LINKFLOW_DEV_API_KEY=" + devKey, "LINKFLOW_REMOTE_PROVIDERS_TOKEN=s3cret"},
		"dev", "--data-dir", t.TempDir(), "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--public-url", base,
		"--nats-port", "-1", "--redis-port", "0", "--log-level", "warn",
		"--sandbox=false", "--remote-providers", "http://"+provAddr)
	testenv.Eventually(t, 30*time.Second, "dev to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	var providers struct {
		Data []struct{ ID string }
	}
	testenv.Do(t, "GET", base+"/v1/providers", devKey, nil).JSON(t, &providers)
	if len(providers.Data) != 4 {
		t.Fatalf("providers from the remote catalog: %+v", providers)
	}
	created := testenv.Do(t, "POST", base+"/v1/links", devKey, map[string]any{"integrationId": "att",
		"operations": []map[string]any{{"resource": "accountProfile", "action": "read"}}})
	var link struct{ LinkID, ClaimCode string }
	created.JSON(t, &link)
	claim := testenv.Do(t, "POST", base+"/v1/links/"+link.LinkID+"/claim", "",
		map[string]any{"claimCode": link.ClaimCode, "credentials": map[string]string{"username": "user_good", "password": "pass_good"}})
	if claim.StatusCode != http.StatusAccepted {
		t.Fatalf("claim: %d %s", claim.StatusCode, claim.Body)
	}
	var got struct {
		Status string
		Result map[string]any
	}
	testenv.Eventually(t, 30*time.Second, "the link to finish", func() bool {
		testenv.Do(t, "GET", base+"/v1/links/"+link.LinkID, devKey, nil).JSON(t, &got)
		return got.Status == "succeeded" || got.Status == "failed"
	})
	if got.Status != "succeeded" || got.Result["profile"] == nil {
		t.Fatalf("link through the remote provider: %+v", got)
	}
}

// sandbox-provider's /readyz follows its Redis, where every operation reads
// or writes the sandbox accounts: a provider whose Redis is gone is taken
// out of rotation, not sent links it would fail.
func TestSandboxProviderReadyFollowsRedis(t *testing.T) {
	t.Parallel()
	rs, err := embedded.StartRedis(embedded.RedisOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Stop)
	p := startProc(t, "sandbox-provider", nil, "sandbox-provider", "--http-addr", fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		"--redis-url", rs.URL, "--log-level", "warn") // ready: Redis answers
	if _, err := p.metric("process_resident_memory_bytes"); err != nil {
		t.Fatalf("process metrics: %v", err)
	}
	rs.Stop()
	testenv.Eventually(t, 15*time.Second, "/readyz to answer 503 once Redis stopped", func() bool {
		return p.probe("/readyz") == http.StatusServiceUnavailable
	})
	if code := p.probe("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d, want 200 (alive, not ready)", code)
	}
}
