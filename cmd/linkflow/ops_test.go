package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/monitor"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// An operator's day with a dead letter: a claimed message that came before
// its link was claimed is dead-lettered by the worker; linkflow dlq list
// shows it, linkflow dlq replay hands it back once the link is claimed and
// the link runs; linkflow status shows the fleet, and the worker exports
// the backlog gauges.
func TestOpsCommands(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	w := f.worker("worker", nil)
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		base := append([]string{"--nats-url", f.natsURL, "--encryption-keys", f.keys}, redisArgs(f.renv)...)
		cmd := exec.Command(linkflowBin, append(args, base...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("linkflow %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	if out := mustRun("dlq", "list"); !strings.Contains(out, "no dead letters") {
		t.Fatalf("dlq list, empty:\n%s", out)
	}
	if out, err := run("dlq", "list", "--limit", "-5"); err == nil || !strings.Contains(out, "--limit -5") {
		t.Fatalf("dlq list --limit -5: %v\n%s", err, out)
	}
	// The message of a link not claimed yet: the worker gives up on it.
	c, err := f.st.CreateLink(ctx, linkflow.NewLink{OrgID: f.org, IntegrationID: "tmobile", Operations: []linkflow.Operation{readPM}, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	early := outbox.ClaimedMessage(f.org, c.Link.ID, "tmobile")
	if _, err := f.js.Publish(ctx, early.Subject, early.Data, jetstream.WithMsgID("early-"+c.Link.ID)); err != nil {
		t.Fatal(err)
	}
	var list string
	testenv.Eventually(t, 15*time.Second, "the dead letter to be listed", func() bool {
		list = mustRun("dlq", "list")
		return strings.Contains(list, c.Link.ID)
	})
	if !strings.Contains(list, "link not_claimed") || !strings.Contains(list, outbox.SubjectClaimed+"tmobile") {
		t.Fatalf("dlq list:\n%s", list)
	}
	var listed struct {
		Total       uint64              `json:"total"`
		DeadLetters []outbox.DeadLetter `json:"deadLetters"`
	}
	if err := json.Unmarshal([]byte(mustRun("dlq", "list", "--json")), &listed); err != nil || listed.Total != 1 || len(listed.DeadLetters) != 1 {
		t.Fatalf("dlq list --json: %+v %v", listed, err)
	}
	seq := listed.DeadLetters[0].Seq

	// status: the dead letter, the fleet's consumers, the worker ready.
	out, err := run("status", "--json", "--probe", "worker="+w.metrics)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var rep monitor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Status == nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if rep.DeadLetters == nil || rep.DeadLetters.Count != 1 || rep.Links == nil || rep.Links.Pending != 1 || len(rep.Errors) > 0 ||
		len(rep.Probes) != 1 || !rep.Probes[0].Ready || rep.Probes[0].Checks["redis"] != "ok" {
		t.Fatalf("status --json:\n%s", out)
	}
	found := false
	for _, c := range rep.Consumers {
		found = found || c.Name == outbox.WorkerConsumer("tmobile")
	}
	if !found {
		t.Fatalf("status --json lists no worker-tmobile consumer:\n%s", out)
	}
	text := mustRun("status", "--probe", "worker="+w.metrics)
	lines := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		lines[strings.Join(strings.Fields(line), " ")] = true
	}
	for _, want := range []string{"LINKS", "pending (not claimed) 1", "worker-tmobile LINKFLOW_LINKS 0 0 0 1", "OUTBOX empty",
		"READYZ ADDRESS READY CHECKS", "worker " + w.metrics + " yes nats: ok; redis: ok; streams: ok"} {
		if !lines[want] {
			t.Errorf("status lacks the line %q:\n%s", want, text)
		}
	}
	if !strings.Contains(strings.Join(strings.Fields(text), " "), "DEAD LETTERS 1, the newest at") {
		t.Errorf("status lacks the dead letter:\n%s", text)
	}
	// A process that does not answer fails the command, after the report.
	if out, err := run("status", "--probe", fmt.Sprintf("api=127.0.0.1:%d", freeTCPPort(t))); err == nil ||
		!strings.Contains(out, "not ready: api") || !strings.Contains(out, "LINKS") {
		t.Fatalf("status with a dead process: %v\n%s", err, out)
	}

	// The worker exports the backlog.
	for _, name := range []string{"linkflow_consumer_pending", "linkflow_outbox_entries", "linkflow_dead_letters", "linkflow_links_pending"} {
		if _, err := w.metric(name); err != nil {
			t.Errorf("worker metrics: %v", err)
		}
	}
	testenv.Eventually(t, 15*time.Second, "linkflow_dead_letters to be 1 (the gauges are cached 5s)", func() bool {
		n, err := w.metric("linkflow_dead_letters")
		return err == nil && n == 1
	})

	// The end user claims the link; its own message is lost (the outbox
	// entry is forgotten as if JetStream had it). The replay runs it.
	cl, err := f.st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, "user_good", "pass_good")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.AckOutbox(ctx, cl.Message); err != nil {
		t.Fatal(err)
	}
	if out, err := run("dlq", "replay"); err == nil || !strings.Contains(out, "--seq") {
		t.Fatalf("dlq replay without --seq or --all: %v\n%s", err, out)
	}
	if out := mustRun("dlq", "replay", "--seq", fmt.Sprint(seq)); !strings.Contains(out, "replayed 1 dead letters") {
		t.Fatalf("dlq replay:\n%s", out)
	}
	if st := f.waitTerminal([]string{c.Link.ID}, 15*time.Second); st[linkflow.StatusSucceeded] != 1 {
		t.Fatalf("after the replay: %v", st)
	}
	if out := mustRun("dlq", "list"); !strings.Contains(out, "no dead letters") {
		t.Fatalf("dlq list after the replay:\n%s", out)
	}
	if out, err := run("dlq", "replay", "--seq", fmt.Sprint(seq)); err == nil || !strings.Contains(out, "no such dead letter") {
		t.Fatalf("replaying a replayed dead letter: %v\n%s", err, out)
	}
	if out := mustRun("dlq", "replay", "--all"); !strings.Contains(out, "replayed 0 dead letters") {
		t.Fatalf("dlq replay --all, none:\n%s", out)
	}
}

// With Redis down, linkflow status still shows what JetStream holds, names
// Redis under its errors and exits 1; linkflow dlq list needs no Redis and
// no encryption keys; both take dev's NATS from --data-dir.
func TestOpsCommandsWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	natsURL, _, js := testenv.NATS(t)
	if err := outbox.EnsureStreams(context.Background(), js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	const deadRedis = "redis://127.0.0.1:1/0" // nothing listens on port 1
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(linkflowBin, args...)
		cmd.Env = append(cleanEnv(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(nil, "status", "--nats-url", natsURL, "--redis-url", deadRedis)
	if err == nil || !strings.Contains(out, "DEAD LETTERS") || !strings.Contains(out, "redis:") ||
		!strings.Contains(out, "could not be read") {
		t.Fatalf("status with Redis down: %v\n%s", err, out)
	}
	if strings.Contains(out, "connection pool") {
		t.Fatalf("status with Redis down prints go-redis's own log lines:\n%s", out)
	}
	if out, err := run(nil, "dlq", "list", "--nats-url", natsURL, "--redis-url", deadRedis); err != nil || !strings.Contains(out, "no dead letters") {
		t.Fatalf("dlq list with Redis down and no encryption keys: %v\n%s", err, out)
	}
	dir := t.TempDir()
	st := &embedded.DevState{EncryptionKey: store.GenerateKey("dev1"), APIKey: "unused-dev-api-key", WebhookSecret: store.NewWebhookSecret(),
		RedisURL: deadRedis, NATSURL: natsURL, APIURL: "http://unused"}
	if err := st.Save(dir); err != nil {
		t.Fatal(err)
	}
	if out, err := run([]string{"LINKFLOW_DATA_DIR=" + dir}, "dlq", "list"); err != nil || !strings.Contains(out, "no dead letters") {
		t.Fatalf("dlq list with dev's --data-dir: %v\n%s", err, out)
	}
	// An admin command that needs dev's Redis asks whether dev runs.
	if out, err := run([]string{"LINKFLOW_DATA_DIR=" + dir}, "orgs", "create", "--name", "x"); err == nil ||
		!strings.Contains(out, "is the linkflow dev of "+dir+" running?") || strings.Contains(out, "connection pool") {
		t.Fatalf("orgs create with dev's --data-dir and its Redis down: %v\n%s", err, out)
	}
}

// With NATS down, linkflow status still shows what Redis holds (the outbox
// waiting to be published, above all), names NATS under its errors and
// exits 1.
func TestStatusWhileNATSIsDown(t *testing.T) {
	t.Parallel()
	rdb, renv := testenv.Redis(t)
	st := openStore(t, rdb, store.GenerateKey("s1"), renv.Prefix)
	ctx := context.Background()
	org, err := st.CreateOrg(ctx, "", "status", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateLink(ctx, linkflow.NewLink{OrgID: org.ID, IntegrationID: "tmobile", Operations: []linkflow.Operation{readPM}, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The claim's message waits in the outbox: no relay runs here.
	if _, err := st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, "user_good", "pass_good"); err != nil {
		t.Fatal(err)
	}
	const deadNATS = "nats://127.0.0.1:1" // nothing listens on port 1
	cmd := exec.Command(linkflowBin, append([]string{"status", "--nats-url", deadNATS}, redisArgs(renv)...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !regexp.MustCompile(`OUTBOX\s+1 entries`).Match(out) || !strings.Contains(string(out), "nats at "+deadNATS) ||
		!strings.Contains(string(out), "could not be read") {
		t.Fatalf("status with NATS down: %v\n%s", err, out)
	}
}

// A bench in which no link completed still prints its report, and exits 1:
// a script running it must see that it measured nothing.
func TestBenchThatCompletesNothingFails(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(linkflowBin, "bench", "--url", fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t)),
		"--api-key", "bench-test-api-key-0123456789", "--webhook-secret", store.NewWebhookSecret(), "--links", "2", "--concurrency", "1", "--timeout", "15s")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "completed       0") || !strings.Contains(string(out), "no link completed") {
		t.Fatalf("bench against nothing: %v\n%s", err, out)
	}
}
