package workflow_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
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
	ctx := context.Background()
	c, err := h.st.CreateLink(ctx, storeLink(h.org, readPM))
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

// A Redis that stops answering while the end user types does not cost them
// the login: the worker asks for the answer again and takes it once Redis
// is back, in the same attempt. The store runs in full duplex, so the
// refused read has run in Redis and only its reply is lost: the answer must
// still be there to read again.
func TestMFAAnswerTakenAfterRedisBlip(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rdb, err := store.DialRedis(h.renv.URL, h.renv.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}} // every script
	rdb.AddHook(refuse)
	blinking, err := store.New(store.Config{Redis: rdb, Keyring: h.kr, Prefix: h.prefix, FullDuplex: true})
	if err != nil {
		t.Fatal(err)
	}
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
