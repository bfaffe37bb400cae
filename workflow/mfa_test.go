package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/workflow"
)

// answer posts the end user's answer as the API does: stored in Redis, then
// a NATS notification.
func (h *harness) answer(l *linkflow.Link, code, response string) {
	h.t.Helper()
	cur := h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	if _, err := h.st.SubmitInput(context.Background(), l.ID, code, cur.Challenge.ID, response); err != nil {
		h.t.Fatal(err)
	}
	b, _ := json.Marshal(outbox.Control{LinkID: l.ID, OrgID: h.org})
	if err := h.nc.Publish(outbox.SubjectInput, b); err != nil {
		h.t.Fatal(err)
	}
}

// runMFA creates and claims a user_mfa link, returning it with its claim code.
func (h *harness) runMFA() (*linkflow.Link, string) {
	h.t.Helper()
	return h.runMFAWith(storeLink(h.org, readPM))
}

// runMFAWith creates and claims in as user_mfa's link.
func (h *harness) runMFAWith(in linkflow.NewLink) (*linkflow.Link, string) {
	h.t.Helper()
	ctx := context.Background()
	c, err := h.st.CreateLink(ctx, in)
	if err != nil {
		h.t.Fatal(err)
	}
	cl, err := h.st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, sandbox.UserMFA, sandbox.PasswordGood)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.pub.Publish(ctx, cl.Message); err != nil {
		h.t.Fatal(err)
	}
	return c.Link, c.Link.ClaimCode
}

func TestMFARightAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	l, code := h.runMFA()
	waiting := h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	if waiting.Challenge == nil || waiting.Challenge.Type != "otp" || waiting.Challenge.AttemptsLeft != 3 {
		t.Fatalf("challenge: %+v", waiting.Challenge)
	}
	h.answer(l, code, sandbox.OTPCode)
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusSucceeded || got.Attempts != 1 {
		t.Fatalf("after the right answer: %s %+v (attempts %d)", got.Status, got.Error, got.Attempts)
	}
}

func TestMFAWrongThenRight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	l, code := h.runMFA()
	h.answer(l, code, "000000")
	var again *linkflow.Link
	for again == nil {
		cur := h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
		if cur.Challenge.AttemptsLeft == 2 {
			again = cur
		}
	}
	if again.Challenge.LastError == "" {
		t.Fatal("a wrong answer is not explained to the end user")
	}
	h.answer(l, code, sandbox.OTPCode)
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusSucceeded {
		t.Fatalf("after wrong then right: %s %+v", got.Status, got.Error)
	}
}

func TestMFAThreeWrongAnswersFail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	l, code := h.runMFA()
	for left := 3; left >= 1; left-- {
		for {
			cur := h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
			if cur.Challenge.AttemptsLeft == left {
				break
			}
		}
		h.answer(l, code, "999999")
	}
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Error == nil || got.Error.Code != linkflow.FailureChallengeFailed {
		t.Fatalf("after three wrong answers: %s %+v", got.Status, got.Error)
	}
}

// The challenge's timeout runs on the worker's clock: moving the clock past
// it fails the link, with no real wait.
func TestMFATimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	clock := clockwork.NewFakeClock()
	h.startWorker(func(c *workflow.Config) { c.Clock = clock })
	l, _ := h.runMFA()
	h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	clock.Advance(4 * time.Minute)
	if got, err := h.st.Link(context.Background(), h.org, l.ID); err != nil || got.Status != linkflow.StatusAwaitingInput {
		t.Fatalf("before the timeout: %+v %v", got, err)
	}
	clock.Advance(time.Minute) // the default timeout: 5 minutes
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Error == nil || got.Error.Code != linkflow.FailureChallengeTimeout {
		t.Fatalf("unanswered challenge: %s %+v", got.Status, got.Error)
	}
}

// An answer that came just before the challenge's timeout, its notice not
// read yet (here: never sent), is still taken when the timeout fires: it
// was accepted in time. The answer comes after the session's first read
// found none, so only the read at the timeout can take it.
func TestMFAAnswerTakenAtTheTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	clock := clockwork.NewFakeClock()
	reads := &readCountingStore{Store: h.st}
	h.startWorker(func(c *workflow.Config) {
		c.Clock, c.Store = clock, reads
		// No heartbeat within the test: it would report the answer.
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Hour, 20*time.Minute, time.Hour
	})
	l, code := h.runMFA()
	cur := h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	testenv.Eventually(t, 10*time.Second, "the session's first read", func() bool { return reads.takes.Load() > 0 })
	if _, err := h.st.SubmitInput(context.Background(), l.ID, code, cur.Challenge.ID, sandbox.OTPCode); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Minute) // the default timeout
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusSucceeded || reads.takes.Load() != 2 {
		t.Fatalf("an answer in time: %s %+v, after %d reads", got.Status, got.Error, reads.takes.Load())
	}
}

// An answer the API stores just after the session's last read at the
// challenge's timeout (the API's clock behind the worker's, or its request
// slower than the read) is refused as expired: the end user is not told it
// was accepted while the link fails for want of it.
func TestMFAAnswerAfterTheLastReadIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	clock := clockwork.NewFakeClock()
	late := &lateAnswerStore{readCountingStore: readCountingStore{Store: h.st}, answered: make(chan error, 1)}
	h.startWorker(func(c *workflow.Config) {
		c.Clock, c.Store = clock, late
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Hour, 20*time.Minute, time.Hour
	})
	l, code := h.runMFA()
	cur := h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	testenv.Eventually(t, 10*time.Second, "the session's first read", func() bool { return late.takes.Load() > 0 })
	late.answer = func() error {
		_, err := h.st.SubmitInput(context.Background(), l.ID, code, cur.Challenge.ID, sandbox.OTPCode)
		return err
	}
	clock.Advance(5 * time.Minute) // the default timeout
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Error == nil || got.Error.Code != linkflow.FailureChallengeTimeout {
		t.Fatalf("the link: %s %+v, want failed for the timeout", got.Status, got.Error)
	}
	select {
	case err := <-late.answered:
		if !errors.Is(err, linkflow.ErrChallengeExpired) {
			t.Fatalf("the answer after the last read: %v, want refused as expired", err)
		}
	default:
		t.Fatal("no answer came after the last read")
	}
}

// lateAnswerStore is the real store where, once answer is set, the next
// read of the challenge's answer (the session's last, at the timeout) is
// followed at once by the API storing an answer; answered is what the API
// was told.
type lateAnswerStore struct {
	readCountingStore
	answer   func() error
	answered chan error
}

func (s *lateAnswerStore) TakeInput(ctx context.Context, id, token, closing string) (string, string, error) {
	n := s.takes.Load() // reads before this one
	cid, resp, err := s.readCountingStore.TakeInput(ctx, id, token, closing)
	// answer is read at the second read only: the test sets it after the
	// first, before the clock moves to the timeout.
	if n == 1 && s.answer != nil {
		s.answered <- s.answer()
	}
	return cid, resp, err
}

// readCountingStore is the real store that counts the reads of challenge
// answers that returned.
type readCountingStore struct {
	*store.Store
	takes atomic.Int64
}

func (s *readCountingStore) TakeInput(ctx context.Context, id, token, closing string) (string, string, error) {
	defer s.takes.Add(1)
	return s.Store.TakeInput(ctx, id, token, closing)
}

// A Redis that stops answering while the end user types does not cost them
// the login: the worker asks for the answer again and takes it once Redis
// is back, in the same attempt. The refused read has run in Redis and only
// its reply is lost: the answer must still be there to read again.
func TestMFAAnswerTakenAfterRedisBlip(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}, LoseReply: true} // every script
	blinking := h.refusingStore(refuse)
	h.startWorker(func(c *workflow.Config) {
		c.Store = blinking
		// No heartbeat inside the test: only the wait for the answer meets
		// the refusals.
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Hour, 20*time.Minute, time.Hour
	})
	l, code := h.runMFA()
	h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	refuse.On.Store(true)
	h.answer(l, code, sandbox.OTPCode) // through the test's own store
	testenv.Eventually(t, 10*time.Second, "the worker to meet the refusal", func() bool { return refuse.Refused.Load() > 0 })
	refuse.On.Store(false)
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusSucceeded || got.Attempts != 1 {
		t.Fatalf("after the blip: %s %+v (attempts %d)", got.Status, got.Error, got.Attempts)
	}
}

// A Redis that does not answer for longer than the lease TTL does not end
// the sessions it could not renew: once it answers, the heartbeat takes each
// lapsed lease back (nobody began the link meanwhile) and the session goes
// on in the same attempt, here an end user's MFA wait.
func TestLapsedLeaseTakenBackAfterRedisStall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}} // every script
	stalling := h.refusingStore(refuse)
	h.startWorker(func(c *workflow.Config) {
		c.Store = stalling
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Second, 200*time.Millisecond, 2*time.Second
	})
	l, code := h.runMFA()
	h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	refuse.On.Store(true)
	testenv.Eventually(t, 10*time.Second, "the lease to lapse", func() bool { return !h.leaseHeld(l.ID) })
	refuse.On.Store(false)
	testenv.Eventually(t, 10*time.Second, "the lease to be held again", func() bool { return h.leaseHeld(l.ID) })
	h.answer(l, code, sandbox.OTPCode)
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusSucceeded || got.Attempts != 1 {
		t.Fatalf("after the stall: %s %+v (attempts %d)", got.Status, got.Error, got.Attempts)
	}
}

// gatedProvider logs in at once and holds its one operation until the test
// lets it go.
type gatedProvider struct{ entered, release chan struct{} }

// gated registers integration "gated", whose provider is a new
// gatedProvider, and returns the provider.
func (h *harness) gated() *gatedProvider {
	h.t.Helper()
	p := &gatedProvider{entered: make(chan struct{}, 1), release: make(chan struct{})}
	h.register("gated", p)
	return p
}

// waitEntered waits for the operation to start.
func (p *gatedProvider) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-p.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the operation did not start")
	}
}

func (*gatedProvider) Login(context.Context, operations.LoginRequest) (*operations.LoginResult, error) {
	return &operations.LoginResult{SessionID: "s1"}, nil
}
func (*gatedProvider) ContinueLogin(context.Context, operations.ContinueRequest) (*operations.LoginResult, error) {
	return nil, operations.Unavailable("no challenge here")
}
func (p *gatedProvider) Execute(ctx context.Context, _ operations.ExecuteRequest) (json.RawMessage, error) {
	p.entered <- struct{}{}
	select {
	case <-p.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return json.RawMessage(`{}`), nil
}
func (*gatedProvider) Close(context.Context, string) error { return nil }

// A fenced write finds out whether the lease only lapsed (no heartbeat in
// these tests took it back first): the commit of a finished session, and
// the read of an MFA answer, take it back and go on in the same attempt.
func TestFencedWriteTakesALapsedLeaseBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := h.gated()
	h.startWorker(func(c *workflow.Config) {
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Hour, 20*time.Minute, time.Hour
	})

	l := h.run("gated", "u", "p", linkflow.Operation{Resource: "thing", Action: "read"})
	p.waitEntered(t)
	h.lapseLease(l.ID)
	close(p.release)
	if got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded || got.Attempts != 1 {
		t.Fatalf("commit after the lease lapsed: %s %+v (attempts %d)", got.Status, got.Error, got.Attempts)
	}

	m, code := h.runMFA()
	h.wait(m.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	h.lapseLease(m.ID)
	h.answer(m, code, sandbox.OTPCode)
	if got := h.wait(m.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded || got.Attempts != 1 {
		t.Fatalf("answer after the lease lapsed: %s %+v (attempts %d)", got.Status, got.Error, got.Attempts)
	}
}

// stallingStore is the real store whose lease renewals hang while stall is
// set, as they do behind a Redis master that stopped answering.
type stallingStore struct {
	*store.Store
	stall   atomic.Bool
	stalled atomic.Int32
	release chan struct{}
}

func (s *stallingStore) Heartbeat(ctx context.Context, leases []linkflow.LeaseRef, slots []linkflow.SlotRef, ttl time.Duration) ([]linkflow.LeaseState, error) {
	if s.stall.Load() {
		s.stalled.Add(1)
		<-s.release
	}
	return s.Store.Heartbeat(ctx, leases, slots, ttl)
}

// A lease renewal that hangs (a Redis master gone silent, before its
// failover) does not stop the ack deadlines' extensions: JetStream does not
// hand the running session to another worker meanwhile, and the session
// ends in its one attempt.
func TestAckDeadlinesOutliveAStalledRenewal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := h.gated()
	st := &stallingStore{Store: h.st, release: make(chan struct{})}
	var once sync.Once
	unstall := func() { once.Do(func() { st.stall.Store(false); close(st.release); close(p.release) }) }
	reg := prometheus.NewRegistry()
	h.startWorker(func(c *workflow.Config) {
		c.Store, c.Metrics = st, workflow.NewMetrics(reg)
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Hour, 100*time.Millisecond, 3*time.Second
	})
	t.Cleanup(unstall) // before the worker stops (cleanups run last first), also when the test fails
	l := h.run("gated", "u", "p", linkflow.Operation{Resource: "thing", Action: "read"})
	p.waitEntered(t)
	st.stall.Store(true)
	testenv.Eventually(t, 10*time.Second, "a renewal to hang", func() bool { return st.stalled.Load() > 0 })
	base := counter(t, reg, "linkflow_worker_ack_extensions_total")
	// Four extensions a third of the ack wait apart: longer than the ack
	// wait, all while the renewal hangs (a 3 s ack wait leaves a loaded
	// machine 2 s of slack for each).
	testenv.Eventually(t, 10*time.Second, "ack deadlines extended while the renewal hangs", func() bool {
		return counter(t, reg, "linkflow_worker_ack_extensions_total") >= base+4
	})
	c, err := h.js.Consumer(context.Background(), outbox.StreamLinks, outbox.WorkerConsumer("gated"))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(context.Background()); err != nil || info.NumRedelivered != 0 {
		t.Fatalf("redelivered while the renewal hung: %+v %v", info, err)
	}
	unstall()
	if got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded || got.Attempts != 1 {
		t.Fatalf("after the stall: %s %+v (attempts %d)", got.Status, got.Error, got.Attempts)
	}
}

// counter is the value of the counter named name in reg, summed over its
// series with the given label pairs (all of them when none are given).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	total := 0.0
	for _, m := range testenv.Series(t, reg, name, labels...) {
		total += m.GetCounter().GetValue()
	}
	return total
}

// A commit whose reply is lost (it ran in Redis) is asked again and found
// to be this session's own: the session publishes the event and
// acknowledges the message, not "fenced, another worker owns this link".
func TestCommitWhoseReplyWasLost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := h.gated()
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}, LoseReply: true}
	lossy := h.refusingStore(refuse)
	reg := prometheus.NewRegistry()
	h.startWorker(func(c *workflow.Config) {
		c.Store, c.Metrics = lossy, workflow.NewMetrics(reg)
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Hour, 20*time.Minute, time.Hour // nothing else runs a script
	})
	l := h.run("gated", "u", "p", linkflow.Operation{Resource: "thing", Action: "read"})
	p.waitEntered(t)
	refuse.On.Store(true)
	close(p.release)
	testenv.Eventually(t, 10*time.Second, "the commit to lose its reply", func() bool { return refuse.Refused.Load() > 0 })
	refuse.On.Store(false)
	if got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded || got.Attempts != 1 {
		t.Fatalf("link %s %+v (attempts %d)", got.Status, got.Error, got.Attempts)
	}
	c, err := h.js.Consumer(context.Background(), outbox.StreamLinks, outbox.WorkerConsumer("gated"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the message acknowledged", func() bool {
		info, err := c.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if n := counter(t, reg, "linkflow_worker_fenced_total"); n != 0 {
		t.Fatalf("counted %v fenced commits", n)
	}
}

// An answer this worker cannot read (sealed with a key it lacks: a key
// rotated in on the API before the workers) is not asked for again until
// the challenge expires: the attempt is handed back at once, for a worker
// that has the key.
func TestUnreadableAnswerHandsTheAttemptBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	newer, err := store.ParseKeyring(store.GenerateKey("newer") + "," + h.keys) // seals with "newer"
	if err != nil {
		t.Fatal(err)
	}
	api, err := store.New(store.Config{Redis: h.rdb, Keyring: newer, Prefix: h.prefix})
	if err != nil {
		t.Fatal(err)
	}
	in := storeLink(h.org, readPM)
	in.Debug = true
	l, code := h.runMFAWith(in)
	cur := h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	if _, err := api.SubmitInput(context.Background(), l.ID, code, cur.Challenge.ID, sandbox.OTPCode); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(outbox.Control{LinkID: l.ID, OrgID: h.org})
	if err := h.nc.Publish(outbox.SubjectInput, b); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the attempt handed back", func() bool { return h.link(l.ID).Attempts >= 2 })
	// The trace names the failed wait the store's, not the provider's.
	_, trace, err := h.st.Trace(context.Background(), h.org, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	var codes []linkflow.FailureCode
	for _, e := range trace {
		if e.Step == linkflow.TraceChallenge && e.Attempt == 1 {
			codes = append(codes, e.Code)
		}
	}
	if len(codes) != 1 || codes[0] != linkflow.FailureInternal {
		t.Fatalf("the wait's trace codes: %v", codes)
	}
}

// A session whose end user answers its challenge takes its process slot back
// while it holds its integration's fleet slot. A worker with one process
// slot that meanwhile took the next link of that integration, and waits for
// the fleet slot, must not hold the process slot while it waits: the two
// would wait for each other for good.
func TestAnsweredSessionGetsItsSlotBackUnderAnIntegrationLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(func(c *workflow.Config) {
		c.Concurrency = 1
		c.IntegrationLimits = map[string]int{sandbox.TMobile: 1}
	})
	l, code := h.runMFA()
	h.wait(l.ID, 10*time.Second, linkflow.StatusAwaitingInput)
	next := h.run(sandbox.TMobile, "user_good", "pass_good", readPM)
	// Both delivered: the MFA session's and the next link's, which waits for
	// the fleet slot the MFA session holds.
	testenv.Eventually(t, 10*time.Second, "the next link delivered to the worker", func() bool {
		c, err := h.js.Consumer(context.Background(), outbox.StreamLinks, outbox.WorkerConsumer(sandbox.TMobile))
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumAckPending == 2
	})
	h.answer(l, code, sandbox.OTPCode)
	for _, id := range []string{l.ID, next.ID} {
		if got := h.wait(id, 20*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded {
			t.Fatalf("link %s: %s %+v", id, got.Status, got.Error)
		}
	}
}

// A store error in a session is the store's, not the provider's: the link
// that fails by it (here its attempts run out) says INTERNAL_ERROR-like
// words of its own, never the error's text (which names servers).
func TestStoreFailureIsNotShownAsTheProviders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}} // every script
	// Its login asks for a code, and turns the refusals on.
	h.register("hooked", stubProvider{login: func(context.Context, operations.LoginRequest) (*operations.LoginResult, error) {
		refuse.On.Store(true)
		return &operations.LoginResult{SessionID: "s1", Challenge: &operations.Challenge{ID: "c1", Type: "otp", Message: "Code?"}}, nil
	}})
	h.startWorker(func(c *workflow.Config) {
		c.Store = h.refusingStore(refuse)
		c.MaxAttempts = 1
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Hour, 20*time.Minute, time.Hour
	})
	l := h.run("hooked", "u", "p", linkflow.Operation{Resource: "thing", Action: "read"})
	// The challenge's write is refused; the failure's commit, tried again,
	// goes through.
	testenv.Eventually(t, 10*time.Second, "the worker to meet the refusal", func() bool { return refuse.Refused.Load() > 0 })
	refuse.On.Store(false)
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Status != linkflow.StatusFailed || got.Error.Code != linkflow.FailureAttemptsExhausted ||
		strings.Contains(got.Error.Message, testenv.ErrRefused.Error()) || !strings.Contains(got.Error.Message, "linkflow could not") {
		t.Fatalf("link %s %+v", got.Status, got.Error)
	}
}
