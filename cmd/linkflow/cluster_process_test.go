package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks/verify"
)

// Issue 13: an api, two workers and a dispatcher launched together before
// their servers exist (a fresh 3-node JetStream cluster, streams at 3
// replicas, and Redis: a single server, or a 3-master cluster with
// LINKFLOW_TEST_REDIS=cluster) wait for them, saying on /readyz what they
// wait for, come up once the servers do, and run a link end to end: created
// through the API, run by a worker, its webhook sent by the dispatcher.
func TestClusterFleetStartsBeforeItsServers(t *testing.T) {
	t.Parallel()
	natsPorts := []int{freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)}
	var natsURLs []string
	for _, p := range natsPorts {
		natsURLs = append(natsURLs, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	natsURL := strings.Join(natsURLs, ",")
	clusterRedis := testenv.ClusterMode(t)
	redisPorts := []int{freeTCPPort(t)}
	if clusterRedis {
		redisPorts = append(redisPorts, freeTCPPort(t), freeTCPPort(t))
	}
	var redisAddrs []string
	for _, p := range redisPorts {
		redisAddrs = append(redisAddrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	redisURL := "redis://" + strings.Join(redisAddrs, ",")

	var mu sync.Mutex
	var webhooks []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		webhooks = append(webhooks, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	// The servers stop after the processes (cleanups run last first): a
	// process that loses them while it stops waits out its timeouts. Their
	// directories go after them: made before the servers' cleanup.
	natsDir, redisDir := t.TempDir(), t.TempDir()
	var natsCluster *embedded.NATSCluster
	var redisCluster *embedded.RedisCluster
	var redisServer *embedded.Redis
	t.Cleanup(func() {
		natsCluster.Shutdown()
		redisCluster.Kill()
		redisServer.Kill()
	})

	keys := store.GenerateKey("fl1")
	common := []string{"--nats-url", natsURL, "--redis-url", redisURL, "--encryption-keys", keys,
		"--stream-replicas", "3", "--sandbox", "--log-level", "warn", "--startup-timeout", "2m"}
	httpPort := freeTCPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	procs := []*proc{
		launchProc(t, "api", nil, append([]string{"api", "--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
			"--public-url", base}, common...)...),
		launchProc(t, "worker-1", nil, append([]string{"worker"}, common...)...),
		launchProc(t, "worker-2", nil, append([]string{"worker"}, common...)...),
		launchProc(t, "dispatcher", nil, append([]string{"dispatcher", "--webhook-allow-private",
			"--webhook-schedule", "0,200ms,500ms,1s,2s"}, common...)...),
	}
	// They wait, and their probes say for what.
	for _, p := range procs {
		var detail string
		testenv.Eventually(t, 20*time.Second, p.name+"'s /readyz to name Redis and NATS", func() bool {
			select {
			case <-p.done:
				t.Fatalf("%s exited without its servers: %v\n%s", p.name, p.err, p.output())
			default:
			}
			code, body := p.get("/readyz")
			detail = body
			return code == http.StatusServiceUnavailable && strings.Contains(body, `redis: waiting`) &&
				strings.Contains(body, `nats: waiting`)
		})
		if code, _ := p.get("/healthz"); code != http.StatusOK {
			t.Fatalf("%s: /healthz %d while it waits", p.name, code)
		}
		t.Logf("%s waits: %s", p.name, detail)
	}

	start := time.Now()
	var wg sync.WaitGroup
	var natsErr, redisErr error
	wg.Go(func() {
		natsCluster, natsErr = embedded.StartNATSCluster(embedded.NATSClusterOptions{Dir: natsDir, Ports: natsPorts})
	})
	wg.Go(func() {
		if clusterRedis {
			redisCluster, redisErr = embedded.StartRedisCluster(embedded.RedisClusterOptions{Dir: redisDir, Ports: redisPorts})
		} else {
			redisServer, redisErr = embedded.StartRedis(embedded.RedisOptions{Dir: redisDir, Port: redisPorts[0]})
		}
	})
	wg.Wait()
	if natsErr != nil || redisErr != nil {
		t.Fatalf("servers: nats %v, redis %v", natsErr, redisErr)
	}
	t.Logf("servers started in %s", time.Since(start).Round(time.Millisecond))
	for _, p := range procs {
		p.waitReady(90 * time.Second)
	}
	t.Logf("the fleet was ready %s after the servers started", time.Since(start).Round(time.Millisecond))

	// An organization and its API key, written straight to Redis.
	rdb, err := store.DialRedis(redisURL, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); ok != clusterRedis {
		t.Fatalf("%s made %T", redisURL, rdb)
	}
	st := openStore(t, rdb, keys, "")
	_, apiKey := seedOrg(t, st, "fleet")

	created := testenv.Do(t, "POST", base+"/v1/links", apiKey, map[string]any{"integrationId": "tmobile",
		"operations": []map[string]any{{"resource": "paymentMethod", "action": "read"}}, "webhookUrl": receiver.URL})
	if created.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", created.StatusCode, created.Body)
	}
	var link struct{ LinkID, ClaimCode string }
	created.JSON(t, &link)
	claim := testenv.Do(t, "POST", base+"/v1/links/"+link.LinkID+"/claim", "",
		map[string]any{"claimCode": link.ClaimCode, "credentials": map[string]string{"username": "user_good", "password": "pass_good"}})
	if claim.StatusCode != http.StatusAccepted {
		t.Fatalf("claim: %d %s", claim.StatusCode, claim.Body)
	}
	t.Logf("link %s created and claimed %s after the servers started", link.LinkID, time.Since(start).Round(time.Millisecond))
	var got struct{ Status string }
	testenv.Eventually(t, 30*time.Second, "the link to finish", func() bool {
		testenv.Do(t, "GET", base+"/v1/links/"+link.LinkID, apiKey, nil).JSON(t, &got)
		return got.Status == "succeeded" || got.Status == "failed"
	})
	if got.Status != "succeeded" {
		t.Fatalf("link: %s", got.Status)
	}
	testenv.Eventually(t, 30*time.Second, "the link's webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range webhooks {
			if strings.Contains(b, link.LinkID) {
				return true
			}
		}
		return false
	})
	t.Logf("the webhook arrived %s after the servers started", time.Since(start).Round(time.Millisecond))
}

// A configuration no wait heals makes a role exit at once, naming the flag
// to fix, even though nothing answers at the other URLs.
func TestStartupConfigErrorsExitAtOnce(t *testing.T) {
	t.Parallel()
	nowhere := func() string { return fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)) }
	keys := store.GenerateKey("cfg")
	for _, tt := range []struct {
		name string
		args []string
		flag string
	}{
		{"bad nats url", []string{"worker", "--nats-url", "nats://exa mple:4222", "--redis-url", "redis://" + nowhere()}, "--nats-url"},
		{"nats url scheme", []string{"dispatcher", "--nats-url", "http://" + nowhere(), "--redis-url", "redis://" + nowhere()}, "--nats-url"},
		{"unknown redis option", []string{"api", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere() + "?no_such_option=1"}, "--redis-url"},
		// A URL that does not parse is quoted by Go's errors, password and
		// all; linkflow's message must name the flag and hide the password.
		{"redis url with a password and a bad port", []string{"worker", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://:s3cret@127.0.0.1:bad"}, "--redis-url"},
		{"redis cluster url with a password and a bad port", []string{"worker", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere() + ",redis://:s3cret@127.0.0.1:bad"}, "--redis-url"},
		{"nats url with a password and a bad scheme", []string{"api", "--nats-url", "https://u:s3cret@" + nowhere(), "--redis-url", "redis://" + nowhere()}, "--nats-url"},
		{"nats url with a password and a bad port", []string{"dispatcher", "--nats-url", "nats://u:s3cret@127.0.0.1:99999", "--redis-url", "redis://" + nowhere()}, "--nats-url"},
		// Left to the worker or dispatcher, 0 would silently be the default
		// and a negative value fail every link or webhook.
		{"negative concurrency", []string{"worker", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere(), "--concurrency", "-1"}, "--concurrency (LINKFLOW_CONCURRENCY)"},
		{"no attempts", []string{"worker", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere(), "--max-attempts", "0"}, "--max-attempts"},
		// Redis keeps TTLs in whole milliseconds: PX 0 is an error on every
		// run, a negative PEXPIRE deletes the token it was to keep.
		{"sub-second lease", []string{"worker", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere(), "--lease-ttl", "500us"}, "--lease-ttl"},
		{"negative token ttl", []string{"api", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere(), "--token-ttl", "-1h"}, "--token-ttl"},
		{"negative challenge timeout", []string{"worker", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere(), "--challenge-timeout", "-5m"}, "--challenge-timeout"},
		{"negative webhook timeout", []string{"dispatcher", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere(), "--webhook-timeout", "-1s"}, "--webhook-timeout"},
		{"log format", []string{"api", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere(), "--log-format", "text"}, "--log-format"},
		{"missing creds", []string{"worker", "--nats-url", "nats://" + nowhere(), "--redis-url", "redis://" + nowhere(),
			"--nats-creds", "/nonexistent/linkflow.creds"}, "--nats-creds"},
		{"missing CA", []string{"api", "--nats-url", "tls://" + nowhere(), "--redis-url", "redis://" + nowhere(),
			"--nats-ca", "/nonexistent/ca.pem"}, "--nats-ca"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append(tt.args, "--encryption-keys", keys, "--metrics-addr", "", "--startup-timeout", "1m")
			start := time.Now()
			out, err := exec.CommandContext(ctx, linkflowBin, args...).CombinedOutput()
			took := time.Since(start)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("exit %v after %s:\n%s", err, took, out)
			}
			if took > 5*time.Second {
				t.Fatalf("took %s to exit:\n%s", took, out)
			}
			if !strings.Contains(string(out), tt.flag) {
				t.Fatalf("the message names no %s:\n%s", tt.flag, out)
			}
			if strings.Contains(string(out), "s3cret") {
				t.Fatalf("the output shows a password:\n%s", out)
			}
		})
	}
}

// Issue 13: on a 3-node JetStream cluster (streams at 3 replicas), an api,
// two workers and a dispatcher started at the same moment run 1,000 links
// that write to the provider, while the server leading the links stream is
// stopped mid-run: every link succeeds, every webhook verifies, and no
// provider write runs twice.
func TestClusterFleetSurvivesStreamLeaderLoss(t *testing.T) {
	t.Parallel()
	natsCluster, _, js := testenv.NATSCluster(t)
	rdb, renv := testenv.Redis(t)
	keys := store.GenerateKey("ll1")
	st := openStore(t, rdb, keys, renv.Prefix)
	ctx := context.Background()
	org, apiKey := seedOrg(t, st, "fleet")
	v, err := verify.New(org.WebhookSecrets[0])
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	hookIDs := map[string]map[string]bool{} // link id -> webhook-ids
	bad := 0
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := v.Verify(r)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var data struct{ LinkID string }
		_ = json.Unmarshal(ev.Data, &data)
		if hookIDs[data.LinkID] == nil {
			hookIDs[data.LinkID] = map[string]bool{}
		}
		hookIDs[data.LinkID][ev.ID] = true
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	common := append([]string{"--nats-url", natsCluster.URL, "--encryption-keys", keys, "--stream-replicas", "3",
		"--sandbox", "--log-level", "warn"}, redisArgs(renv)...)
	httpPort := freeTCPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	procs := []*proc{
		launchProc(t, "api", nil, append([]string{"api", "--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
			"--public-url", base, "--key-rate-limit", "0", "--client-rate-limit", "0"}, common...)...),
		launchProc(t, "worker-1", nil, append([]string{"worker"}, common...)...),
		launchProc(t, "worker-2", nil, append([]string{"worker"}, common...)...),
		launchProc(t, "dispatcher", nil, append([]string{"dispatcher", "--webhook-allow-private",
			"--webhook-schedule", "0,200ms,500ms,1s,2s,5s,10s"}, common...)...),
	}
	for _, p := range procs {
		p.waitReady(90 * time.Second)
	}

	const n, accounts = 1000, 50
	card := map[string]string{"cardNumber": "4242424242424242", "expirationDate": "12/30", "cvv": "123",
		"nameOnCard": "Jane Doe", "billingZip": "10001"}
	ids := make([]string, n)
	var claimed atomic.Int32
	var wg sync.WaitGroup
	var next atomic.Int32
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				// Send, not Do: t.Fatal does not end the test from here.
				created, err := testenv.Send("POST", base+"/v1/links", apiKey, map[string]any{"integrationId": "tmobile",
					"operations": []map[string]any{{"resource": "paymentMethod", "action": "write", "arguments": card}},
					"webhookUrl": receiver.URL})
				if err != nil || created.StatusCode != http.StatusCreated {
					t.Errorf("create %d: %v %v", i, err, created)
					return
				}
				var link struct{ LinkID, ClaimCode string }
				if err := json.Unmarshal(created.Body, &link); err != nil {
					t.Errorf("create %d: %v %s", i, err, created.Body)
					return
				}
				ids[i] = link.LinkID
				c, err := testenv.Send("POST", base+"/v1/links/"+link.LinkID+"/claim", "", map[string]any{"claimCode": link.ClaimCode,
					"credentials": map[string]string{"username": fmt.Sprintf("acct%d", i%accounts), "password": "pass_good"}})
				if err != nil || c.StatusCode != http.StatusAccepted {
					t.Errorf("claim %d: %v %v", i, err, c)
					return
				}
				claimed.Add(1)
			}
		})
	}
	// A third of the way in, the server leading the links stream stops.
	testenv.Eventually(t, 60*time.Second, "a third of the links claimed", func() bool { return claimed.Load() >= n/3 })
	stream, err := js.Stream(ctx, outbox.StreamLinks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("links stream leader: %+v %v", info, err)
	}
	if err := natsCluster.StopServer(info.Cluster.Leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped %s, the links stream's leader, after %d claims", info.Cluster.Leader, claimed.Load())
	wg.Wait()
	if t.Failed() {
		return
	}

	status := map[string]int{}
	testenv.Eventually(t, 120*time.Second, "every link to end", func() bool {
		status = map[string]int{}
		for _, id := range ids {
			l, err := st.Link(ctx, org.ID, id)
			if err != nil {
				return false
			}
			status[string(l.Status)]++
		}
		return status["succeeded"]+status["failed"] == n
	})
	if status["succeeded"] != n {
		t.Fatalf("links: %v", status)
	}
	testenv.Eventually(t, 120*time.Second, "every link's webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hookIDs) == n
	})
	mu.Lock()
	for id, wids := range hookIDs {
		if len(wids) != 1 {
			t.Errorf("link %s: webhooks with %d webhook-ids", id, len(wids))
		}
	}
	if bad > 0 {
		t.Errorf("%d webhooks did not verify", bad)
	}
	mu.Unlock()
	// Each link wrote once: every account's write log holds distinct
	// idempotency keys, n in all.
	sb, err := sandbox.New(sandbox.Config{Store: sandbox.NewRedisStore(rdb)})
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	for a := range accounts {
		acct, err := sb.Account(ctx, org.ID, "tmobile", fmt.Sprintf("acct%d", a))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, w := range acct.WriteLog {
			if seen[w.IdempotencyKey] {
				t.Errorf("acct%d: write %s ran twice", a, w.IdempotencyKey)
			}
			seen[w.IdempotencyKey] = true
			writes++
		}
	}
	if writes != n {
		t.Errorf("%d provider writes for %d links", writes, n)
	}
}

// A process asked to stop while it waits for Redis and NATS at start (a
// rollout that replaces a pod still starting, systemd stopping a unit) exits
// 0 at once: a requested stop is not a crash.
func TestSIGTERMWhileStartingExitsZero(t *testing.T) {
	t.Parallel()
	nowhere := func() string { return fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)) }
	for _, role := range []string{"api", "worker", "dispatcher"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			p := launchProc(t, role, nil, role, "--nats-url", "nats://"+nowhere(), "--redis-url", "redis://"+nowhere(),
				"--encryption-keys", store.GenerateKey("stop"), "--startup-timeout", "2m")
			// The probes answer while it waits: alive, not ready.
			testenv.Eventually(t, 30*time.Second, role+" waiting for Redis and NATS", func() bool {
				return p.probe("/healthz") == http.StatusOK && p.probe("/readyz") == http.StatusServiceUnavailable
			})
			p.stopCleanly(10 * time.Second)
		})
	}
}
