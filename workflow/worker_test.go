package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/workflow"
)

func TestLinkSucceedsWithWrappedResultAndConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	l := h.run("tmobile", "user_good", "pass_good", readPM, writePM("4111111111111111"))
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusSucceeded {
		t.Fatalf("status %s, error %+v", got.Status, got.Error)
	}
	var res struct {
		Operations []struct {
			Resource, Action string
			Data             map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(got.Result, &res); err != nil || len(res.Operations) != 2 {
		t.Fatalf("result %s: %v", got.Result, err)
	}
	if res.Operations[0].Data["paymentMethods"] == nil || res.Operations[1].Data["paymentMethod"] == nil {
		t.Fatalf("result keys: %s", got.Result)
	}
	if strings.Contains(string(got.Result), "4111111111111111") {
		t.Fatal("the full card number is in the result")
	}
	if got.ConnectionID == "" || got.StartedAt.IsZero() || got.CompletedAt.IsZero() {
		t.Fatalf("link after success: %+v", got)
	}
	c, err := h.st.Connection(context.Background(), h.org, got.ConnectionID)
	if err != nil || c.Username != "user_good" || c.Status != linkflow.ConnHealthy {
		t.Fatalf("connection: %+v %v", c, err)
	}
}

func TestSingleOperationResultIsFlat(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	l := h.run("tmobile", "user_good", "pass_good", readBil)
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	var res map[string]json.RawMessage
	if err := json.Unmarshal(got.Result, &res); err != nil || res["billing"] == nil || len(res) != 1 {
		t.Fatalf("flat result: %s %v", got.Result, err)
	}
}

func TestAllOrNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	l := h.run("tmobile", "all_or_nothing", "pass_good", readPM, writePM("4111111111111111"), writePM(sandbox.CardDeclined), readBil)
	h.wantFailedAt(l.ID, linkflow.FailureDeclined, 2)
}

// wantFailedAt waits for link id to end and fails the test unless it failed
// with code at operation index, keeping no result and no connection.
func (h *harness) wantFailedAt(id string, code linkflow.FailureCode, index int) {
	h.t.Helper()
	got := h.wait(id, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusFailed || got.Error == nil || got.Error.Code != code {
		h.t.Fatalf("want failed %s, got %s %+v", code, got.Status, got.Error)
	}
	if got.Error.OperationIndex == nil || *got.Error.OperationIndex != index {
		h.t.Fatalf("operationIndex %v, want %d", got.Error.OperationIndex, index)
	}
	if got.Result != nil || got.ConnectionID != "" {
		h.t.Fatalf("a failed link kept a result or connection: %s %s", got.Result, got.ConnectionID)
	}
}

func TestPermanentLoginErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	// One password only: a wrong one fails the link at once (with more
	// tries it is asked for again; the API's TestPasswordTries).
	h.startWorker(func(c *workflow.Config) { c.PasswordTries = 1 })
	for _, tc := range []struct {
		user, pass string
		code       linkflow.FailureCode
	}{
		{"user_good", "wrong", linkflow.FailureInvalidCredentials},
		{"user_locked", "pass_good", linkflow.FailureAccountLocked},
	} {
		l := h.run("att", tc.user, tc.pass, readPM)
		got := h.wait(l.ID, 10*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
		if got.Error == nil || got.Error.Code != tc.code || got.Attempts != 1 {
			t.Errorf("%s/%s: %s %+v after %d attempts", tc.user, tc.pass, got.Status, got.Error, got.Attempts)
		}
	}
}

func TestTransientErrorRetriesTheSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	l := h.run("verizon", "user_flaky", "pass_good", readPM)
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusSucceeded || got.Attempts != 2 {
		t.Fatalf("flaky user: %s after %d attempts (%+v)", got.Status, got.Attempts, got.Error)
	}
}

func TestRedeliveryOfAFinishedLinkIsIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	l := h.run("tmobile", "redeliver", "pass_good", writePM("4111111111111111"))
	done := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded)
	// Publish the claimed message again past the dedupe window's reach.
	data, _ := json.Marshal(outbox.Claimed{LinkID: l.ID, OrgID: h.org, Attempt: 1})
	if _, err := h.js.Publish(context.Background(), outbox.SubjectClaimed+"tmobile", data); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the duplicate to be acknowledged", func() bool {
		info, err := h.js.Stream(context.Background(), outbox.StreamLinks)
		return err == nil && info.CachedInfo().State.Msgs == 0 && streamMsgs(t, h) == 0
	})
	again := h.link(l.ID)
	if again.Version != done.Version || again.Attempts != done.Attempts {
		t.Fatalf("the finished link changed: %+v", again)
	}
	acct, err := h.sb.Account(context.Background(), h.org, "tmobile", "redeliver")
	if err != nil || len(acct.WriteLog) != 1 {
		t.Fatalf("write log after a redelivery: %+v %v", acct, err)
	}
}

func streamMsgs(t *testing.T, h *harness) uint64 {
	s, err := h.js.Stream(context.Background(), outbox.StreamLinks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestCancelStopsBeforeTheNextOperation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *sandbox.Config) { c.SlowDelay = 300 * time.Millisecond })
	// A heartbeat whose renewals (each bounded by the heartbeat) a loaded
	// machine still answers in time, and operations enough to outlast
	// several of them.
	h.startWorker(func(c *workflow.Config) { c.LeaseTTL, c.Heartbeat = time.Second, 200*time.Millisecond })
	l := h.run("tmobile", "user_slow", "pass_good", readPM, readPM, readPM, readPM, readPM, readPM, readPM, readPM)
	h.wait(l.ID, 10*time.Second, linkflow.StatusRunning)
	res, err := h.st.CancelLink(context.Background(), h.org, l.ID)
	if err != nil || !res.Requested {
		t.Fatalf("cancel running: %+v %v", res, err)
	}
	// No NATS notification here: the worker's heartbeat must notice it.
	got := h.wait(l.ID, 15*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Error == nil || got.Error.Code != linkflow.FailureCanceled || got.Error.OperationIndex == nil || *got.Error.OperationIndex >= 8 {
		t.Fatalf("canceled link: %s %+v", got.Status, got.Error)
	}
}

func TestIntegrationLimitHoldsAcrossWorkers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *sandbox.Config) { c.SlowDelay = 50 * time.Millisecond })
	limit := map[string]int{"att": 2}
	h.startWorker(func(c *workflow.Config) { c.IntegrationLimits = limit })
	h.startWorker(func(c *workflow.Config) { c.IntegrationLimits = limit })
	var ids []string
	for range 12 {
		ids = append(ids, h.run("att", "user_slow", "pass_good", readPM).ID)
	}
	other := h.run("tmobile", "user_good", "pass_good", readPM)
	h.wait(other.ID, 10*time.Second, linkflow.StatusSucceeded)
	for _, id := range ids {
		h.wait(id, 30*time.Second, linkflow.StatusSucceeded)
	}
	max, err := h.sb.MaxConcurrentSessions(context.Background(), "att")
	if err != nil {
		t.Fatal(err)
	}
	if max < 1 || max > 2 {
		t.Fatalf("sandbox saw %d concurrent att sessions; the limit is 2", max)
	}
}

// A worker's concurrency is for sessions: an integration with nothing to
// run holds none of it. A worker with one slot serving every integration
// (four in the sandbox) runs links of two of them, twice over; it once
// lost a slot to each idle integration's wait for a message, and with one
// slot it stopped for good once an idle one took it.
func TestIdleIntegrationsHoldNoSlots(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(func(c *workflow.Config) { c.Concurrency = 1 })
	for round := range 2 {
		a := h.run("verizon", "user_good", "pass_good", readPM)
		b := h.run("tmobile", "user_good", "pass_good", readPM)
		for _, l := range []*linkflow.Link{a, b} {
			if got := h.wait(l.ID, 15*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded {
				t.Fatalf("round %d: %s link %s: %+v", round, l.IntegrationID, got.Status, got.Error)
			}
		}
	}
}

func TestCancelNotificationStopsAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *sandbox.Config) { c.SlowDelay = 300 * time.Millisecond })
	// The heartbeat is far off: only the NATS notification can stop it.
	h.startWorker(func(c *workflow.Config) {
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Minute, 20*time.Second, time.Minute
	})
	l := h.run("tmobile", "user_slow", "pass_good", readPM, readPM, readPM, readPM, readPM, readPM)
	h.wait(l.ID, 10*time.Second, linkflow.StatusRunning)
	if _, err := h.st.CancelLink(context.Background(), h.org, l.ID); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(outbox.Control{LinkID: l.ID, OrgID: h.org})
	if err := h.nc.Publish(outbox.SubjectCancel, b); err != nil {
		t.Fatal(err)
	}
	got := h.wait(l.ID, 15*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Error == nil || got.Error.Code != linkflow.FailureCanceled {
		t.Fatalf("canceled link: %s %+v", got.Status, got.Error)
	}
}

// A worker for an integration the registry does not have is refused: its
// consumer would wait for links that never come.
func TestUnknownIntegrationRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, mod := range []func(*workflow.Config){
		func(c *workflow.Config) { c.Integrations = []string{sandbox.TMobile, "tmobil"} },
		func(c *workflow.Config) { c.IntegrationLimits = map[string]int{"tmobil": 5} },
	} {
		if _, err := workflow.NewWorker(h.config(mod)); !errors.Is(err, workflow.ErrUnknownIntegration) ||
			!strings.Contains(err.Error(), `"tmobil"`) || !strings.Contains(err.Error(), sandbox.TMobile) {
			t.Errorf("NewWorker: %v", err)
		}
	}
}

// A start that fails half way leaves nothing running: the subscriptions and
// fetch loops of the steps before it are stopped.
func TestFailedStartCleansUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	// An integration the registry has, whose id JetStream refuses as a
	// consumer's name.
	in, _ := h.reg.Integration(sandbox.TMobile)
	odd := *in
	odd.ID = "no.dots.in.consumer.names"
	if err := h.reg.Register(odd); err != nil {
		t.Fatal(err)
	}
	before := h.nc.NumSubscriptions()
	w, err := workflow.NewWorker(h.config(func(c *workflow.Config) {
		c.Integrations = []string{sandbox.TMobile, odd.ID}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err == nil {
		t.Fatal("a consumer JetStream refuses must fail the start")
	}
	// The consumer's iterator drains in the background: its subscription
	// goes shortly after Start returns.
	testenv.Eventually(t, 5*time.Second, "the failed start's subscriptions to go", func() bool {
		return h.nc.NumSubscriptions() == before
	})
	if err := w.Start(context.Background()); err == nil {
		t.Fatal("a worker starts once")
	}
	w.Stop()
	w.Stop()
}

// A consumer deleted under a running worker (an operator's mistake, a
// stream rebuilt) is created again: the worker goes on running links
// instead of looking healthy while it takes none.
func TestWorkerRecreatesADeletedConsumer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	// Pull requests of 1s: heartbeats every 500ms, so a consumer deleted
	// while none was waiting is noticed within a second or two.
	h.startWorker(func(c *workflow.Config) {
		c.RetryBase, c.RetryMax, c.Consumer.PullExpiry = 10*time.Millisecond, 100*time.Millisecond, time.Second
	})
	ctx := context.Background()
	if err := h.js.DeleteConsumer(ctx, outbox.StreamLinks, outbox.WorkerConsumer(sandbox.TMobile)); err != nil {
		t.Fatal(err)
	}
	l := h.run(sandbox.TMobile, "user_good", "pass_good", readPM)
	if got := h.wait(l.ID, 20*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded {
		t.Fatalf("a link after the consumer was deleted: %s %+v", got.Status, got.Error)
	}
}

// A configuration whose in-progress acks cannot keep a session's message
// (a heartbeat over half the ack wait), or whose attempts outnumber the
// deliveries, is refused.
func TestWorkerConfigRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tt := range []struct {
		name string
		mod  func(*workflow.Config)
		want string
	}{
		{"heartbeat over half the ack wait", func(c *workflow.Config) { c.LeaseTTL, c.Consumer.AckWait = 90*time.Second, 30*time.Second }, "ack wait"},
		{"attempts as many as deliveries", func(c *workflow.Config) { c.MaxAttempts, c.Consumer.MaxDeliver = 20, 20 }, "MaxDeliver"},
	} {
		_, err := workflow.NewWorker(h.config(tt.mod))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if _, err := workflow.NewWorker(h.config(nil)); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
}

// Stop before Start is a no-op, as the house rule for every component has it.
func TestWorkerStopBeforeStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w, err := workflow.NewWorker(h.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	w.Stop()
}

// A link whose operations return more than MaxResultBytes in all fails with
// RESULT_TOO_LARGE at the operation that crossed it; the operations after it
// do not run, and no result is kept.
func TestResultOverTheLimitFailsTheLink(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(func(c *workflow.Config) { c.MaxResultBytes = 16 })
	l := h.run("tmobile", "user_good", "pass_good", readPM, readBil)
	h.wantFailedAt(l.ID, linkflow.FailureResultTooLarge, 0)
}

// Links the sweeper ends count with the worker's links, by status and code,
// so a dashboard of failures by code sees them.
func TestSweeperCountsTheLinksItEnds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	reg := prometheus.NewRegistry()
	sw, err := workflow.NewSweeper(workflow.SweeperConfig{Store: h.st, Publisher: h.pub, Metrics: workflow.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.st.CreateLink(context.Background(), linkflow.NewLink{OrgID: h.org, IntegrationID: "tmobile",
		Operations: []linkflow.Operation{readPM}, ExpiresIn: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the sweeper to expire the link", func() bool {
		if err := sw.Sweep(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		return h.link(c.Link.ID).Status == linkflow.StatusExpired
	})
	if got := counter(t, reg, "linkflow_worker_links_finished_total", "status", "expired"); got != 1 {
		t.Fatalf("expired links counted %v, want 1", got)
	}
}
