package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/workflow"
)

// stubProvider is a provider whose login is a function, for failures the
// sandbox has no magic user for.
type stubProvider struct {
	login func(ctx context.Context, req operations.LoginRequest) (*operations.LoginResult, error)
}

func (p stubProvider) Login(ctx context.Context, req operations.LoginRequest) (*operations.LoginResult, error) {
	return p.login(ctx, req)
}
func (stubProvider) ContinueLogin(context.Context, operations.ContinueRequest) (*operations.LoginResult, error) {
	return nil, errors.New("no challenges")
}
func (stubProvider) Execute(context.Context, operations.ExecuteRequest) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}
func (stubProvider) Close(context.Context, string) error { return nil }

// deadLetters returns the messages in the dead-letter stream.
func (h *harness) deadLetters() []jetstream.RawStreamMsg {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, outbox.StreamDLQ)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err == nil {
			out = append(out, *m)
		}
	}
	return out
}

func TestAttemptsExhaustedFailsAndDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.register("downprovider", stubProvider{login: func(context.Context, operations.LoginRequest) (*operations.LoginResult, error) {
		return nil, operations.Unavailable("down for maintenance")
	}})
	h.startWorker(func(c *workflow.Config) { c.MaxAttempts = 3 })
	l := h.run("downprovider", "u", "p", linkflow.Operation{Resource: "thing", Action: "read"})
	got := h.wait(l.ID, 15*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Error == nil || got.Error.Code != linkflow.FailureAttemptsExhausted || got.Attempts != 3 {
		t.Fatalf("link: %s %+v after %d attempts", got.Status, got.Error, got.Attempts)
	}
	var dl []jetstream.RawStreamMsg
	testenv.Eventually(t, 5*time.Second, "the dead letter", func() bool { dl = h.deadLetters(); return len(dl) == 1 })
	if dl[0].Header.Get(outbox.HeaderLinkID) != l.ID || dl[0].Header.Get(outbox.HeaderReason) == "" {
		t.Fatalf("dead letter headers: %v", dl[0].Header)
	}
}

func TestUnparseableMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.startWorker(nil)
	if _, err := h.js.Publish(context.Background(), outbox.SubjectClaimed+"tmobile", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	var dl []jetstream.RawStreamMsg
	testenv.Eventually(t, 5*time.Second, "the dead letter", func() bool { dl = h.deadLetters(); return len(dl) == 1 })
	if string(dl[0].Data) != "not json" || dl[0].Header.Get(outbox.HeaderOriginalSubject) != outbox.SubjectClaimed+"tmobile" {
		t.Fatalf("dead letter: %s %v", dl[0].Data, dl[0].Header)
	}
	testenv.Eventually(t, 5*time.Second, "the bad message to leave the work queue", func() bool { return streamMsgs(t, h) == 0 })
}

// A message nothing else records (here one that does not parse) stays in
// the work queue while JetStream refuses its copy to the dead letters (the
// stream full), and is copied, and removed, once it has room.
func TestUnparseableMessageKeptWhileItsCopyIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, nil)
	// Deliveries slow enough that the advisory (20 of them) cannot make the
	// copy before the stream has room: the copy is the message's own.
	h.startWorker(func(c *workflow.Config) { c.RetryBase, c.RetryMax = 100*time.Millisecond, time.Second })
	dlq, err := h.js.Stream(ctx, outbox.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	full := dlq.CachedInfo().Config
	full.MaxMsgs, full.Discard = 1, jetstream.DiscardNew
	if _, err := h.js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.Publish(ctx, outbox.SubjectDeadLetterLinks, []byte("filler")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.Publish(ctx, outbox.SubjectDeadLetterLinks, []byte("refused")); err == nil {
		t.Fatal("the full dead-letter stream took a message")
	}
	if _, err := h.js.Publish(ctx, outbox.SubjectClaimed+"tmobile", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	cons, err := h.js.Consumer(ctx, outbox.StreamLinks, outbox.WorkerConsumer("tmobile"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the message to come back after its copy was refused", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Consumer >= 2
	})
	if n := streamMsgs(t, h); n != 1 {
		t.Fatalf("the work queue holds %d messages, want the one whose copy was refused", n)
	}
	full.MaxMsgs = -1
	if _, err := h.js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	var dl []jetstream.RawStreamMsg
	testenv.Eventually(t, 10*time.Second, "the dead letter", func() bool { dl = h.deadLetters(); return len(dl) == 2 })
	if string(dl[1].Data) != "not json" || dl[1].Header.Get(outbox.HeaderReason) != "unparseable message" {
		t.Fatalf("dead letter: %s %v", dl[1].Data, dl[1].Header)
	}
	testenv.Eventually(t, 5*time.Second, "the bad message to leave the work queue", func() bool { return streamMsgs(t, h) == 0 })
}

// A message JetStream gave up on (MaxDeliver reached: here every delivery
// meets a worker that lacks the key its link's secrets were sealed with) is
// copied to the dead-letter stream from the advisory, and its link fails.
func TestMaxDeliveriesAdvisoryDeadLettersAndFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	otherKeys, err := store.ParseKeyring(store.GenerateKey("other"))
	if err != nil {
		t.Fatal(err)
	}
	keyless, err := store.New(store.Config{Redis: h.rdb, Keyring: otherKeys, Prefix: h.prefix})
	if err != nil {
		t.Fatal(err)
	}
	h.startWorker(func(c *workflow.Config) {
		c.Store = keyless
		c.Consumer, c.MaxAttempts = outbox.ConsumerConfig{MaxDeliver: 3}, 2
	})
	l := h.run("tmobile", "user_good", "pass_good", writePM("4111111111111111"))
	got := h.wait(l.ID, 15*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Error == nil || got.Error.Code != linkflow.FailureAttemptsExhausted {
		t.Fatalf("link: %s %+v", got.Status, got.Error)
	}
	testenv.Eventually(t, 5*time.Second, "the dead letter", func() bool {
		for _, m := range h.deadLetters() {
			if m.Header.Get(outbox.HeaderLinkID) == l.ID {
				return true
			}
		}
		return false
	})
	testenv.Eventually(t, 5*time.Second, "the message to leave the work queue", func() bool { return streamMsgs(t, h) == 0 })
}

// The advisory is a core NATS message: JetStream raises it once (when a
// pull request, here one a dead worker left, looks for the next message),
// whether a worker listens or not. One raised while every worker was down
// (a message that crashes the worker each time it runs, say) is kept in
// LINKFLOW_ADVISORIES, and a worker that starts later handles it: the link
// fails, the message is dead-lettered once and leaves the work queue.
func TestMaxDeliveriesAdvisoryRaisedWhileNoWorkerRuns(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	l := h.run("tmobile", "user_good", "pass_good", writePM("4111111111111111"))
	advisories := h.exhaustDeliveries()
	if got := h.link(l.ID); got.Status != linkflow.StatusClaimed {
		t.Fatalf("before any worker runs the link is %s", got.Status)
	}

	h.startDeadLetterWorker(nil)
	dl := h.advisoryHandled(l.ID, advisories)
	if len(dl) != 1 || dl[0].Header.Get(outbox.HeaderDeliveries) != "2" {
		t.Fatalf("dead letters of the link: %d (%v), want one after 2 deliveries", len(dl), dl)
	}
}

// exhaustDeliveries gives both deliveries (MaxDeliver 2) of the one claimed
// tmobile message to a worker that dies without an ack, and so does its last
// pull request, then waits for JetStream's advisory, kept in
// LINKFLOW_ADVISORIES, which it returns.
func (h *harness) exhaustDeliveries() jetstream.Stream {
	t := h.t
	t.Helper()
	ctx := context.Background()
	cons, err := outbox.EnsureWorkerConsumer(ctx, h.js, "tmobile", outbox.ConsumerConfig{MaxDeliver: 2, AckWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pull := func(wait time.Duration) int {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(wait))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range b.Messages() {
			n++
		}
		return n
	}
	for i := range 2 {
		if n := pull(5 * time.Second); n != 1 {
			t.Fatalf("delivery %d: fetched %d messages, want 1", i+1, n)
		}
	}
	if n := pull(time.Second); n != 0 {
		t.Fatalf("a third delivery (MaxDeliver 2): %d messages", n)
	}
	advisories, err := h.js.Stream(ctx, outbox.StreamAdvisories)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the advisory, kept", func() bool {
		info, err := advisories.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	return advisories
}

// advisoryHandled waits for the max-deliveries advisory of link id to be
// handled: the link failed with attempts exhausted, its message out of the
// work queue, the advisory done. It returns the link's dead letters.
func (h *harness) advisoryHandled(id string, advisories jetstream.Stream) []jetstream.RawStreamMsg {
	t := h.t
	t.Helper()
	got := h.wait(id, 15*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Error == nil || got.Error.Code != linkflow.FailureAttemptsExhausted {
		t.Fatalf("link: %s %+v", got.Status, got.Error)
	}
	testenv.Eventually(t, 5*time.Second, "the message to leave the work queue", func() bool { return streamMsgs(t, h) == 0 })
	testenv.Eventually(t, 5*time.Second, "the advisory to be done", func() bool {
		info, err := advisories.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
	var dl []jetstream.RawStreamMsg
	for _, m := range h.deadLetters() {
		if m.Header.Get(outbox.HeaderLinkID) == id {
			dl = append(dl, m)
		}
	}
	return dl
}

// startDeadLetterWorker starts a worker with the consumer exhaustDeliveries
// made (MaxDeliver 2) and st (nil: the harness's store).
func (h *harness) startDeadLetterWorker(st *store.Store) *workflow.Worker {
	return h.startWorker(func(c *workflow.Config) {
		c.Consumer, c.LeaseTTL, c.MaxAttempts = outbox.ConsumerConfig{MaxDeliver: 2, AckWait: 2 * time.Second}, time.Second, 1
		if st != nil {
			c.Store = st
		}
	})
}

// A worker that stops while it waits for Redis to fail the link of an
// advisory hands the advisory back: the next worker fails the link.
// (Before the advisories were kept in a stream, the stopping worker dropped
// it, and the link stayed claimed for good.)
func TestMaxDeliveriesAdvisoryOutlivesAStoppingWorker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	l := h.run("tmobile", "user_good", "pass_good", writePM("4111111111111111"))
	advisories := h.exhaustDeliveries()
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}}
	refuse.On.Store(true)
	first := h.startDeadLetterWorker(h.refusingStore(refuse))
	testenv.Eventually(t, 10*time.Second, "the first worker to try failing the link", func() bool { return refuse.Refused.Load() >= 2 })
	first.Stop()
	if got := h.link(l.ID); got.Status != linkflow.StatusClaimed {
		t.Fatalf("the link is %s while Redis refused", got.Status)
	}

	h.startDeadLetterWorker(nil)
	if n := len(h.advisoryHandled(l.ID, advisories)); n != 1 {
		t.Fatalf("%d dead letters of the link, want 1 (both workers made one: the second is a duplicate)", n)
	}
}

func TestEnsureStreamsIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	for _, cfg := range []outbox.StreamConfig{{}, {}, {DuplicateWindow: 5 * time.Minute}} {
		if err := outbox.EnsureStreams(ctx, h.js, cfg); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := h.js.Stream(ctx, outbox.StreamLinks)
	info, _ := s.Info(ctx)
	if info.Config.Duplicates != 5*time.Minute || info.Config.Retention != jetstream.WorkQueuePolicy {
		t.Fatalf("updated config: %+v", info.Config)
	}
	// The dead letters' window outlasts a worker's tries to fail a link
	// (deadLetterPatience, an hour): a copy made again after them is one.
	dlq, _ := h.js.Stream(ctx, outbox.StreamDLQ)
	if info, _ := dlq.Info(ctx); info.Config.Duplicates != outbox.DeadLetterDuplicateWindow || outbox.DeadLetterDuplicateWindow < 2*time.Hour {
		t.Fatalf("dead letters' duplicate window: %s", info.Config.Duplicates)
	}
	for range 2 {
		if _, err := outbox.EnsureWorkerConsumer(ctx, h.js, "tmobile", outbox.ConsumerConfig{AckWait: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if err := outbox.CheckStreams(ctx, h.js); err != nil {
		t.Fatal(err)
	}
}

// rotatingProvider answers a login with a challenge in session s1, and the
// challenge's answer with a session of its own, s2; it records what it was
// asked to close.
type rotatingProvider struct {
	mu     sync.Mutex
	closed []string
}

func (*rotatingProvider) Login(context.Context, operations.LoginRequest) (*operations.LoginResult, error) {
	return &operations.LoginResult{SessionID: "s1", Challenge: &operations.Challenge{ID: "c1", Type: "otp", Message: "Code?"}}, nil
}
func (*rotatingProvider) ContinueLogin(context.Context, operations.ContinueRequest) (*operations.LoginResult, error) {
	return &operations.LoginResult{SessionID: "s2"}, nil
}
func (*rotatingProvider) Execute(context.Context, operations.ExecuteRequest) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}
func (p *rotatingProvider) Close(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = append(p.closed, id)
	return nil
}

// A provider that answers a challenge with a new session has both closed
// at the session's end, not only the first.
func TestEveryProviderSessionIsClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := &rotatingProvider{}
	h.register("rotating", p)
	h.startWorker(nil)
	l := h.run("rotating", "u", "p", linkflow.Operation{Resource: "thing", Action: "read"})
	h.answer(l, l.ClaimCode, "123456")
	if got := h.wait(l.ID, 15*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded {
		t.Fatalf("link %s %+v", got.Status, got.Error)
	}
	testenv.Eventually(t, 10*time.Second, "both provider sessions closed", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return slices.Contains(p.closed, "s1") && slices.Contains(p.closed, "s2")
	})
}

// A link whose deliveries ran out while the worker could not reach Redis
// is failed once Redis answers: not left claimed for ever, its message
// deleted while it could not be failed.
func TestDeadLetteredLinkFailedOnceRedisAnswers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}} // every script
	refuse.On.Store(true)
	down := h.refusingStore(refuse)
	h.startWorker(func(c *workflow.Config) {
		c.Store = down
		c.Consumer, c.MaxAttempts = outbox.ConsumerConfig{MaxDeliver: 3}, 2
	})
	l := h.run("tmobile", "user_good", "pass_good", readPM)
	testenv.Eventually(t, 30*time.Second, "the dead letter", func() bool {
		for _, m := range h.deadLetters() {
			if m.Header.Get(outbox.HeaderLinkID) == l.ID {
				return true
			}
		}
		return false
	})
	if got := h.link(l.ID); got.Status.Terminal() {
		t.Fatalf("the link ended while Redis refused: %s", got.Status)
	}
	refuse.On.Store(false)
	got := h.wait(l.ID, 15*time.Second, linkflow.StatusFailed, linkflow.StatusSucceeded)
	if got.Error == nil || got.Error.Code != linkflow.FailureAttemptsExhausted {
		t.Fatalf("link: %s %+v", got.Status, got.Error)
	}
	testenv.Eventually(t, 10*time.Second, "the message to leave the work queue", func() bool { return streamMsgs(t, h) == 0 })
}
