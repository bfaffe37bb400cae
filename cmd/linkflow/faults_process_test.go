package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// The fault tests of issue 14 run a fleet (api, worker, dispatcher) on a
// Redis and a NATS server they stop and start again, under a load of links
// created and claimed through the API. The suite runs them small;
// -faults.links runs them longer (docs/operations.md has the figures):
//
//	go test -p 1 -run 'TestFault' -timeout 30m ./cmd/linkflow/ -faults.links 2000 -v
var (
	faultLinksFlag  = flag.Int("faults.links", 0, "links each fault test runs (0: the suite's quick size)")
	faultOutageFlag = flag.Duration("faults.outage", 0, "how long Redis stays down in TestFaultRedisDownUnderLoad (0: 10s)")
)

// faultLinks is the number of links a fault test runs: ci in the suite, or
// -faults.links.
func faultLinks(ci int) int {
	if *faultLinksFlag > 0 {
		return *faultLinksFlag
	}
	return ci
}

// faultFleet is linkflow on servers the test stops and starts again: a
// redis-server with the append-only file on a fixed port and data directory
// (a clean stop writes it out, a start reads it back), an embedded NATS
// server whose JetStream stores to a fixed directory on a fixed port, and
// the processes. The test reaches linkflow the way customers and end users
// do, over HTTP, and receives its webhooks.
type faultFleet struct {
	t                   *testing.T
	redisPort, natsPort int
	redisDir, natsDir   string
	redis               *embedded.Redis
	nats                *server.Server
	keys                string
	rdb                 *redis.Client
	st                  *store.Store
	org, apiKey         string
	httpPort            int
	base                string
	hooks               *hookLog
	http                *http.Client

	mu      sync.Mutex
	answers []answer
	// closed is set when the test is over: the load stops.
	closed atomic.Bool
}

// newFaultFleet starts a fleet's servers and makes its organization.
func newFaultFleet(t *testing.T) *faultFleet {
	t.Helper()
	f := plannedFaultFleet(t)
	f.startRedis()
	f.startNATS()
	f.setUp()
	return f
}

// plannedFaultFleet is a fleet whose servers are not started yet: their
// ports and directories are chosen.
func plannedFaultFleet(t *testing.T) *faultFleet {
	f := &faultFleet{t: t, redisPort: freeTCPPort(t), natsPort: freeTCPPort(t), redisDir: t.TempDir(), natsDir: t.TempDir(),
		keys: store.GenerateKey("ft1"), httpPort: freeTCPPort(t),
		http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	f.base = fmt.Sprintf("http://127.0.0.1:%d", f.httpPort)
	// The servers stop after the processes (cleanups run last first).
	t.Cleanup(func() {
		f.stopNATS()
		f.redis.Kill()
	})
	return f
}

// setUp makes the organization, its API key and the webhook receiver, once
// Redis runs.
func (f *faultFleet) setUp() {
	t := f.t
	t.Helper()
	f.rdb = redis.NewClient(&redis.Options{Addr: f.redis.Addr, PoolSize: 32})
	t.Cleanup(func() { _ = f.rdb.Close() })
	kr, err := store.ParseKeyring(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if f.st, err = store.New(store.Config{Redis: f.rdb, Keyring: kr}); err != nil {
		t.Fatal(err)
	}
	org, apiKey := seedOrg(t, f.st, "faults")
	f.org, f.apiKey = org.ID, apiKey
	if f.hooks, err = newHookLog(t, org.WebhookSecrets[0]); err != nil {
		t.Fatal(err)
	}
}

// startRedis starts (or starts again) the fleet's redis-server, with the
// append-only file, on its port and directory.
func (f *faultFleet) startRedis() {
	f.t.Helper()
	r, err := embedded.StartRedis(embedded.RedisOptions{Dir: f.redisDir, Port: f.redisPort, AppendOnly: true})
	if err != nil {
		f.t.Fatal(err)
	}
	f.redis = r
}

// startNATS starts (or starts again) the fleet's NATS server on its port
// and JetStream directory.
func (f *faultFleet) startNATS() {
	f.t.Helper()
	s, err := embedded.StartNATS(embedded.NATSOptions{Dir: f.natsDir, Port: f.natsPort})
	if err != nil {
		f.t.Fatal(err)
	}
	f.nats = s
}

func (f *faultFleet) stopNATS() {
	if f.nats != nil {
		f.nats.Shutdown()
		f.nats.WaitForShutdown()
	}
}

// common are the flags every process of the fleet takes.
func (f *faultFleet) common() []string {
	return []string{"--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", f.natsPort), "--redis-url", fmt.Sprintf("redis://127.0.0.1:%d", f.redisPort),
		"--encryption-keys", f.keys, "--sandbox", "--log-level", "warn"}
}

// The fleet's processes: started and ready, or only launched (launch*).
func (f *faultFleet) api() *proc {
	return startProc(f.t, "api", nil, f.apiArgs()...)
}

func (f *faultFleet) launchAPI() *proc {
	return launchProc(f.t, "api", nil, f.apiArgs()...)
}

func (f *faultFleet) apiArgs() []string {
	return append([]string{"api", "--http-addr", fmt.Sprintf("127.0.0.1:%d", f.httpPort), "--public-url", f.base,
		"--key-rate-limit", "0", "--client-rate-limit", "0"}, f.common()...)
}

func (f *faultFleet) worker(name string, args ...string) *proc {
	return startProc(f.t, name, nil, append(append([]string{"worker"}, f.common()...), args...)...)
}

func (f *faultFleet) launchWorker(name string, args ...string) *proc {
	return launchProc(f.t, name, nil, append(append([]string{"worker"}, f.common()...), args...)...)
}

func (f *faultFleet) dispatcher(name string, args ...string) *proc {
	return startProc(f.t, name, nil, f.dispatcherArgs(args)...)
}

func (f *faultFleet) launchDispatcher(name string, args ...string) *proc {
	return launchProc(f.t, name, nil, f.dispatcherArgs(args)...)
}

func (f *faultFleet) dispatcherArgs(args []string) []string {
	base := append([]string{"dispatcher", "--webhook-allow-private", "--webhook-schedule", "0,200ms,500ms,1s,2s,5s,10s"}, f.common()...)
	return append(base, args...)
}

// probeLink is a pending link whose API view and hosted page sample reads.
type probeLink struct{ LinkID, ClaimCode string }

// sampleLink creates the link sample reads.
func (f *faultFleet) sampleLink() probeLink {
	f.t.Helper()
	a := f.call("create", "POST", "/v1/links", f.apiKey, map[string]any{"integrationId": "tmobile",
		"operations": []map[string]any{{"resource": "paymentMethod", "action": "read"}}}, nil)
	var l probeLink
	if a.status != http.StatusCreated || json.Unmarshal(a.body, &l) != nil {
		f.t.Fatalf("create the probe link: %d %v %s", a.status, a.err, a.body)
	}
	return l
}

// sample requests the customer API, the hosted page and /readyz every
// interval until stop closes, for a view of what clients see meanwhile.
func (f *faultFleet) sample(stop <-chan struct{}, interval time.Duration, l probeLink) {
	for {
		f.call("get", "GET", "/v1/links/"+l.LinkID, f.apiKey, nil, nil)
		f.call("hosted", "GET", "/link/"+l.LinkID+"?code="+url.QueryEscape(l.ClaimCode), "", nil, nil)
		f.call("readyz", "GET", "/readyz", "", nil, nil)
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		if f.closed.Load() {
			return
		}
	}
}

// waitAlive fails the test when a process exited.
// outage takes a dependency (dep, as /readyz names it) away with stop: it
// waits until every process's /readyz names it, keeps it away until outage
// has passed since it went, checks that every process lived through it,
// and brings it back with start, waiting until every process is ready
// again. It returns when the dependency went, was started again and was
// up.
func (f *faultFleet) outage(dep string, outage time.Duration, stop, start func(), procs ...*proc) (down, restart, up time.Time) {
	t := f.t
	t.Helper()
	stop()
	down = time.Now()
	for _, p := range procs {
		testenv.Eventually(t, 8*time.Second, p.name+"'s /readyz to name "+dep, func() bool {
			code, body := p.get("/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(body, dep+": ")
		})
	}
	time.Sleep(time.Until(down.Add(outage))) // the outage's length, not a wait for an event
	waitAlive(t, procs...)
	restart = time.Now()
	start()
	up = time.Now()
	for _, p := range procs {
		p.waitReady(30 * time.Second)
	}
	return down, restart, up
}

func waitAlive(t *testing.T, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.output())
		default:
		}
	}
}
