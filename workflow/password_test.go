package workflow_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/workflow"
)

// passwordProvider takes only the password "right", and records every
// password it was asked to log in with. Its first operation fails
// (unavailable: the session is tried again).
type passwordProvider struct {
	mu       sync.Mutex
	tried    []string
	executed int
	refused  func() // called at each refusal, when set
}

func (p *passwordProvider) Login(_ context.Context, req operations.LoginRequest) (*operations.LoginResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tried = append(p.tried, req.Password)
	if req.Password != "right" {
		if p.refused != nil {
			p.refused()
		}
		return nil, operations.InvalidCredentials("wrong password")
	}
	return &operations.LoginResult{SessionID: "s"}, nil
}
func (*passwordProvider) ContinueLogin(context.Context, operations.ContinueRequest) (*operations.LoginResult, error) {
	return nil, operations.InvalidCredentials("no challenge")
}
func (p *passwordProvider) Execute(context.Context, operations.ExecuteRequest) (json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.executed++; p.executed == 1 {
		return nil, operations.Unavailable("down for a moment")
	}
	return json.RawMessage(`{}`), nil
}
func (*passwordProvider) Close(context.Context, string) error { return nil }

func (p *passwordProvider) wantTried(t *testing.T, want ...string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Equal(p.tried, want) {
		t.Fatalf("passwords tried at the provider: %q, want %q", p.tried, want)
	}
}

// A session handed back while it asks for the password again (here at a
// shutdown) leaves a later attempt that asks before it logs in: the refused
// passwords are never tried again at the provider (each one more wrong
// password towards its lockout), and the passwords tried stay counted
// across the attempts. The one that worked is kept: the attempt after a
// transient failure logs in with it, without asking.
func TestRefusedPasswordNotReplayedAfterAHandBack(t *testing.T) {
	t.Parallel()
	h, p, l, asked := handedBackAfterTwoPasswords(t)
	h.startWorker(nil)
	// Whether the end user entered a password meanwhile is not known: the
	// challenge does not say the last one was wrong.
	if c := h.awaitChallenge(l.ID, asked.ID); c.Type != linkflow.ChallengeCredentials || c.AttemptsLeft != 1 ||
		!strings.Contains(c.LastError, "interrupted") {
		t.Fatalf("the next attempt's challenge: %+v", c)
	}
	p.wantTried(t, "wrong-1", "wrong-2")
	h.answer(l, l.ClaimCode, "right")
	if got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded {
		t.Fatalf("after the right password: %s %+v", got.Status, got.Error)
	}
	p.wantTried(t, "wrong-1", "wrong-2", "right", "right")
}

// A worker that allows fewer passwords than were refused already (its
// configuration changed meanwhile) fails the link without asking again.
func TestRefusedPasswordsOverALowerLimit(t *testing.T) {
	t.Parallel()
	h, p, l, _ := handedBackAfterTwoPasswords(t)
	h.startWorker(func(c *workflow.Config) { c.PasswordTries = 2 })
	got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed)
	if got.Status != linkflow.StatusFailed || got.Error.Code != linkflow.FailureInvalidCredentials {
		t.Fatalf("link %s %+v", got.Status, got.Error)
	}
	p.wantTried(t, "wrong-1", "wrong-2")
}

// A refusal Redis does not take at once (a blip just after the provider
// refused) is recorded once it does, in the same attempt: not handed back
// for a later attempt to send the refused password again.
func TestRefusedPasswordRecordedAfterARedisBlip(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}} // every script
	p := &passwordProvider{refused: func() { refuse.On.Store(true) }}
	h.register("pwcheck", p)
	h.startWorker(func(c *workflow.Config) {
		c.Store = h.refusingStore(refuse)
		// No heartbeat inside the test: only the refusal's record meets
		// the refusals.
		c.LeaseTTL, c.Heartbeat, c.Consumer.AckWait = time.Hour, 20*time.Minute, time.Hour
	})
	l := h.run("pwcheck", "u", "wrong-1", linkflow.Operation{Resource: "thing", Action: "read"})
	testenv.Eventually(t, 10*time.Second, "the worker to meet the refusal", func() bool { return refuse.Refused.Load() > 0 })
	refuse.On.Store(false)
	if c := h.awaitChallenge(l.ID, ""); c.AttemptsLeft != 2 || h.link(l.ID).Attempts != 1 {
		t.Fatalf("challenge %+v on attempt %d", c, h.link(l.ID).Attempts)
	}
	h.answer(l, l.ClaimCode, "right")
	if got := h.wait(l.ID, 10*time.Second, linkflow.StatusSucceeded, linkflow.StatusFailed); got.Status != linkflow.StatusSucceeded {
		t.Fatalf("after the right password: %s %+v", got.Status, got.Error)
	}
	p.wantTried(t, "wrong-1", "right", "right")
}

// handedBackAfterTwoPasswords runs a link on a passwordProvider whose
// provider refused two passwords, the claim's and the first one entered
// again, and hands it back (a worker's shutdown) while it asks for a third.
func handedBackAfterTwoPasswords(t *testing.T) (*harness, *passwordProvider, *linkflow.Link, *linkflow.Challenge) {
	h := newHarness(t, nil)
	p := &passwordProvider{}
	h.register("pwcheck", p)
	first := h.startWorker(func(c *workflow.Config) { c.ShutdownGrace = time.Millisecond })
	l := h.run("pwcheck", "u", "wrong-1", linkflow.Operation{Resource: "thing", Action: "read"})
	h.answer(l, l.ClaimCode, "wrong-2")
	asked := h.awaitChallenge(l.ID, "")
	if asked.AttemptsLeft != 1 { // the first challenge, its answer not tried yet
		asked = h.awaitChallenge(l.ID, asked.ID)
	}
	p.wantTried(t, "wrong-1", "wrong-2")
	first.Stop()
	return h, p, l, asked
}

// awaitChallenge waits until link id waits for an answer to another
// challenge than after, and returns it.
func (h *harness) awaitChallenge(id, after string) *linkflow.Challenge {
	h.t.Helper()
	var c *linkflow.Challenge
	testenv.Eventually(h.t, 10*time.Second, "a challenge other than "+after, func() bool {
		l := h.link(id)
		c = l.Challenge
		return l.Status == linkflow.StatusAwaitingInput && c != nil && c.ID != after
	})
	return c
}
