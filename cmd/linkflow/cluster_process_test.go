package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
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
	// process that loses them while it stops waits out its timeouts.
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
	natsDir, redisDir := t.TempDir(), t.TempDir()
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
	kr, err := store.ParseKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	org, err := st.CreateOrg(ctx, "", "fleet", "")
	if err != nil {
		t.Fatal(err)
	}
	apiKey := store.NewAPIKey()
	if _, _, err := st.CreateAPIKey(ctx, org.ID, "fleet", apiKey, nil); err != nil {
		t.Fatal(err)
	}

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
		})
	}
}
