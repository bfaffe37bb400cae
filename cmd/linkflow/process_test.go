package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/promtext"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// linkflowBin is the linkflow binary the process tests run, built once.
var linkflowBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "linkflow-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	linkflowBin = filepath.Join(dir, "linkflow")
	if out, err := exec.Command("go", "build", "-o", linkflowBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build linkflow: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a linkflow child process; its output is kept for failure reports.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	metrics string
	mu      sync.Mutex
	out     strings.Builder
	done    chan struct{}
	err     error
}

// startProc runs `linkflow args...` with env added.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return startProcIn(t, "", name, env, args...)
}

// startProcIn runs `linkflow args...` in directory dir ("" for the test's)
// and waits until it is ready.
func startProcIn(t *testing.T, dir, name string, env []string, args ...string) *proc {
	t.Helper()
	p := launchProcIn(t, dir, name, env, args...)
	p.waitReady(30 * time.Second)
	return p
}

// launchProc runs `linkflow args...` with env added, without waiting for it.
func launchProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return launchProcIn(t, "", name, env, args...)
}

func launchProcIn(t *testing.T, dir, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, done: make(chan struct{})}
	port := freeTCPPort(t)
	p.metrics = fmt.Sprintf("127.0.0.1:%d", port)
	args = append(args, "--metrics-addr", p.metrics)
	p.cmd = exec.Command(linkflowBin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	// Dies with the test binary, whatever ends it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		if err := sc.Err(); err != nil { // a line over the buffer: say so, and keep the pipe drained
			p.mu.Lock()
			p.out.WriteString("--- output not read further: " + err.Error() + "\n")
			p.mu.Unlock()
			_, _ = io.Copy(io.Discard, pr)
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		_ = pw.Close()
		<-scanned // done means every line the process wrote is in out
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.stop()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", p.name, p.output())
		}
	})
	return p
}

// waitReady waits until the process answers its probes on the metrics
// address: ready once Redis, NATS and the streams are. It fails the test
// when the process exits first.
func (p *proc) waitReady(timeout time.Duration) {
	t := p.t
	t.Helper()
	testenv.Eventually(t, timeout, p.name+" to be ready on its metrics address", func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited at start: %v\n%s", p.name, p.err, p.output())
		default:
		}
		return p.probe("/readyz") == http.StatusOK
	})
	if code := p.probe("/healthz"); code != http.StatusOK {
		t.Fatalf("%s: GET /healthz on the metrics address: %d", p.name, code)
	}
	if _, err := p.metric("go_goroutines"); err != nil {
		t.Fatalf("%s: metrics: %v", p.name, err)
	}
}

// probe GETs path on the process's metrics address and returns the status
// (0 when nothing answers).
func (p *proc) probe(path string) int {
	resp, err := http.Get("http://" + p.metrics + path)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// saidStopping says whether a process's output has its first signal's
// "stopping: " line and ends with a line holding last.
func saidStopping(out, last string) bool {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.Contains(out, "stopping: ") && strings.Contains(lines[len(lines)-1], last)
}

// stop ends the process gracefully (SIGTERM: it stops what it started, a
// redis-server child included, before the test's directories go), or kills
// it after 10 seconds.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// stopCleanly ends the process with SIGTERM and fails the test unless it
// exits within timeout, with status 0.
func (p *proc) stopCleanly(timeout time.Duration) {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not stop on SIGTERM within %s", p.name, timeout)
	}
	if p.err != nil {
		p.t.Fatalf("%s exited with %v\n%s", p.name, p.err, p.output())
	}
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// metric reads a counter or gauge (summed over labels) from the process's
// /metrics.
func (p *proc) metric(name string) (float64, error) { return promtext.Scrape(p.metrics, name) }

// freeTCPPort returns a port that is free now and that the kernel does not
// hand out by itself: it lies below the ephemeral range, so no outgoing
// connection (a process dialing a server that is not up yet) and no server
// listening on port 0 can take it in the seconds before the process the
// test chose it for binds it.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	low := ephemeralLow()
	for range 200 {
		port := 10000 + rand.IntN(low-10000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port
	}
	t.Fatalf("no free port in 10000-%d", low-1)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default, 32768, when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if n, _ := fmt.Sscan(string(b), &low, &high); n != 2 || low <= 11000 {
		return 32768
	}
	return low
}

// fleet is the shared Redis and JetStream worker processes connect to, and
// the test's own view of them for creating and watching links.
type fleet struct {
	t       *testing.T
	keys    string
	natsURL string
	redis   string
	st      *store.Store
	rdb     redis.UniversalClient
	js      jetstream.JetStream
	pub     *outbox.Publisher
	org     string
	renv    *testenv.RedisEnv
}

// redisArgs are the flags that put a process on the test's Redis: its URL,
// and on a shared cluster the cluster and the test's key prefix.
func redisArgs(renv *testenv.RedisEnv) []string {
	args := []string{"--redis-url", renv.URL}
	if renv.Cluster {
		args = append(args, "--redis-cluster")
	}
	if renv.Prefix != "" {
		args = append(args, "--redis-prefix", renv.Prefix)
	}
	return args
}

// openStore is a store on rdb sealing with keys, under prefix ("" is the
// commands' default).
func openStore(t *testing.T, rdb redis.UniversalClient, keys, prefix string) *store.Store {
	t.Helper()
	kr, err := store.ParseKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	rdb, renv := testenv.Redis(t)
	natsURL, _, js := testenv.NATS(t)
	f := &fleet{t: t, keys: store.GenerateKey("p1"), natsURL: natsURL, redis: renv.URL, rdb: rdb, js: js, renv: renv}
	kr, err := store.ParseKeyring(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if f.st, err = store.New(store.Config{Redis: rdb, Keyring: kr, Prefix: renv.Prefix}); err != nil {
		t.Fatal(err)
	}
	if err := outbox.EnsureStreams(context.Background(), js, outbox.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	f.pub = testenv.Publisher(t, js, f.st, zap.NewNop())
	org, err := f.st.CreateOrg(context.Background(), "", "fleet", "")
	if err != nil {
		t.Fatal(err)
	}
	f.org = org.ID
	return f
}

// worker starts a worker process on the fleet.
func (f *fleet) worker(name string, env []string, args ...string) *proc {
	base := append([]string{"worker", "--sandbox", "--nats-url", f.natsURL, "--encryption-keys", f.keys,
		"--log-level", "warn"}, redisArgs(f.renv)...)
	return startProc(f.t, name, env, append(base, args...)...)
}

// claimLinks creates and claims n links as username, with ops.
func (f *fleet) claimLinks(n int, integration, username string, ops ...linkflow.Operation) []string {
	f.t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range n {
		c, err := f.st.CreateLink(ctx, linkflow.NewLink{OrgID: f.org, IntegrationID: integration, Operations: ops, ExpiresIn: time.Hour})
		if err != nil {
			f.t.Fatal(err)
		}
		cl, err := f.st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, username, "pass_good")
		if err != nil {
			f.t.Fatal(err)
		}
		if err := f.pub.Publish(ctx, cl.Message); err != nil {
			f.t.Fatal(err)
		}
		ids[i] = c.Link.ID
	}
	return ids
}

// statuses counts the links by status.
func (f *fleet) statuses(ids []string) map[linkflow.Status]int {
	out := map[linkflow.Status]int{}
	for _, id := range ids {
		l, err := f.st.Link(context.Background(), f.org, id)
		if err != nil {
			f.t.Fatal(err)
		}
		out[l.Status]++
	}
	return out
}

func (f *fleet) waitTerminal(ids []string, timeout time.Duration) map[linkflow.Status]int {
	f.t.Helper()
	var st map[linkflow.Status]int
	testenv.Eventually(f.t, timeout, fmt.Sprintf("%d links to finish", len(ids)), func() bool {
		st = f.statuses(ids)
		return st[linkflow.StatusSucceeded]+st[linkflow.StatusFailed] == len(ids)
	})
	return st
}

var (
	readPM  = linkflow.Operation{Resource: "paymentMethod", Action: "read"}
	writePM = linkflow.Operation{Resource: "paymentMethod", Action: "write", Arguments: json.RawMessage(
		`{"cardNumber":"4242424242424242","expirationDate":"12/30","cvv":"123","nameOnCard":"Jane Doe","billingZip":"10001"}`)}
)

// writeLog returns the idempotency keys of the sandbox account's write log.
func (f *fleet) writeLog(integration, username string) []string {
	f.t.Helper()
	sb, err := sandbox.New(sandbox.Config{Store: sandbox.NewRedisStore(f.rdb)})
	if err != nil {
		f.t.Fatal(err)
	}
	acct, err := sb.Account(context.Background(), f.org, integration, username)
	if err != nil {
		f.t.Fatal(err)
	}
	keys := make([]string, len(acct.WriteLog))
	for i, r := range acct.WriteLog {
		keys[i] = r.IdempotencyKey
	}
	return keys
}

// get GETs path on the process's metrics address and returns the status
// and body (0 when nothing answers).
func (p *proc) get(path string) (int, string) {
	resp, err := http.Get("http://" + p.metrics + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// seedOrg writes an organization and an API key straight to Redis, for a
// fleet whose API the test then drives.
func seedOrg(t *testing.T, st *store.Store, name string) (*linkflow.Org, string) {
	t.Helper()
	ctx := context.Background()
	org, err := st.CreateOrg(ctx, "", name, "")
	if err != nil {
		t.Fatal(err)
	}
	key := store.NewAPIKey()
	if _, _, err := st.CreateAPIKey(ctx, org.ID, name, key, nil); err != nil {
		t.Fatal(err)
	}
	return org, key
}
