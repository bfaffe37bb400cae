package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/conformance"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/store"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testBundle struct {
	store *store.Store
	sb    *sandbox.Sandbox
	reg   *operations.Registry
	clock *clock
}

// setup starts Redis and a sandbox on it. cfg's Store, Now and Logger are
// filled in; a nil cfg uses a real clock.
func setup(t testing.TB, cfg *sandbox.Config) *testBundle {
	t.Helper()
	rdb, _ := testenv.Redis(t)
	kr, err := store.ParseKeyring(store.GenerateKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{store: st}
	if cfg == nil {
		cfg = &sandbox.Config{}
	} else if cfg.Now == nil {
		b.clock = &clock{t: time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)}
		cfg.Now = b.clock.Now
	}
	cfg.Store, cfg.Logger = st, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	if b.sb, err = sandbox.New(*cfg); err != nil {
		t.Fatal(err)
	}
	b.reg = operations.NewRegistry(cfg.Now)
	if err := sandbox.Register(b.reg, b.sb); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	t.Parallel()
	b := setup(t, &sandbox.Config{SlowDelay: time.Second, Now: time.Now})
	conformance.Run(t, conformance.Harness{Registry: b.reg, Sandbox: b.sb, SlowDelay: time.Second})
}

func login(t *testing.T, p operations.Provider, user string) string {
	t.Helper()
	res, err := p.Login(context.Background(), operations.LoginRequest{Attempt: 1, Username: user, Password: sandbox.PasswordGood})
	if err != nil {
		t.Fatal(err)
	}
	return res.SessionID
}

func TestSessionsAreCountedAcrossProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t, &sandbox.Config{SessionTTL: time.Minute})
	ctx := context.Background()
	// A second process: another Sandbox on the same Redis.
	other, err := sandbox.New(sandbox.Config{Store: b.store, Now: b.clock.Now, SessionTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := b.sb.Provider(sandbox.ATT), other.Provider(sandbox.ATT)
	counts := func(wantLive, wantMax int) {
		t.Helper()
		live, err1 := b.sb.LiveSessions(ctx, sandbox.ATT)
		maximum, err2 := other.MaxConcurrentSessions(ctx, sandbox.ATT)
		if err := errors.Join(err1, err2); err != nil || live != wantLive || maximum != wantMax {
			t.Fatalf("live %d, max %d (%v); want %d and %d", live, maximum, err, wantLive, wantMax)
		}
	}
	s1, s2 := login(t, p1, "a"), login(t, p2, "b")
	// A pending login counts too.
	res, err := p2.Login(ctx, operations.LoginRequest{Attempt: 1, Username: sandbox.UserMFA, Password: sandbox.PasswordGood})
	if err != nil || res.Challenge == nil {
		t.Fatalf("mfa login: %+v, %v", res, err)
	}
	counts(3, 3)
	// Failed logins open no session.
	_, _ = p1.Login(ctx, operations.LoginRequest{Attempt: 1, Username: sandbox.UserLocked, Password: sandbox.PasswordGood})
	_, _ = p1.Login(ctx, operations.LoginRequest{Attempt: 1, Username: "a", Password: "bad"})
	counts(3, 3)

	for _, c := range []struct {
		p  operations.Provider
		id string
	}{{p1, s1}, {p2, res.SessionID}} {
		if err := c.p.Close(ctx, c.id); err != nil {
			t.Fatal(err)
		}
	}
	counts(1, 3)
	// s2 keeps working while it is used; each call keeps it alive.
	for range 3 {
		b.clock.Add(30 * time.Second)
		if _, err := p2.Execute(ctx, operations.ExecuteRequest{SessionID: s2, Resource: sandbox.ResourceAccountProfile, Action: sandbox.ActionRead}); err != nil {
			t.Fatal(err)
		}
	}
	counts(1, 3)
	if err := b.sb.ResetMaxConcurrentSessions(ctx, sandbox.ATT); err != nil {
		t.Fatal(err)
	}
	counts(1, 1)
	// A session nobody closes (its process died) stops counting after the
	// TTL, and the process that held it refuses it.
	b.clock.Add(2 * time.Minute)
	counts(0, 1)
	_, err = p2.Execute(ctx, operations.ExecuteRequest{SessionID: s2, Resource: sandbox.ResourceAccountProfile, Action: sandbox.ActionRead})
	if pe := operations.AsError(err); pe.Code != operations.CodeUnavailable || !pe.Transient {
		t.Fatalf("an expired session: %v", err)
	}
	// Other integrations count apart.
	if n, err := b.sb.MaxConcurrentSessions(ctx, sandbox.TMobile); err != nil || n != 0 {
		t.Fatalf("tmobile max %d, %v", n, err)
	}
}

func TestConcurrentWritesFromTwoProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	other, err := sandbox.New(sandbox.Config{Store: b.store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	args := []byte(fmt.Sprintf(`{"cardNumber":"4242424242424242","expirationDate":"12/%02d","cvv":"123","nameOnCard":"A B","billingZip":"10001-1234"}`,
		(time.Now().Year()+2)%100))
	var wg sync.WaitGroup
	outs := make([]string, 10)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := []*sandbox.Sandbox{b.sb, other}[i%2].Provider(sandbox.Verizon)
			res, err := p.Login(ctx, operations.LoginRequest{Attempt: 1, Username: "racer", Password: sandbox.PasswordGood})
			if err != nil {
				t.Error(err)
				return
			}
			defer p.Close(ctx, res.SessionID)
			out, err := p.Execute(ctx, operations.ExecuteRequest{
				SessionID: res.SessionID, Resource: sandbox.ResourcePaymentMethod, Action: sandbox.ActionWrite,
				Arguments: args, IdempotencyKey: "link_x:1",
			})
			if err != nil {
				t.Error(err)
			}
			outs[i] = string(out)
		}()
	}
	wg.Wait()
	for _, o := range outs {
		if o != outs[0] {
			t.Fatalf("results differ: %s and %s", o, outs[0])
		}
	}
	acct, err := other.Account(ctx, sandbox.Verizon, "racer")
	if err != nil {
		t.Fatal(err)
	}
	if len(acct.WriteLog) != 1 || acct.PaymentMethods[0].Last4 != "4242" || !acct.PaymentMethods[0].IsDefault {
		t.Fatalf("account after racing writes: %+v", acct)
	}
	if _, err := b.sb.Account(ctx, "nope", "racer"); !errors.Is(err, sandbox.ErrUnknownIntegration) {
		t.Fatalf("unknown integration: %v", err)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	b := setup(t, &sandbox.Config{Latency: 50 * time.Millisecond, Now: time.Now})
	p := b.sb.Provider(sandbox.TMobile)
	sid := login(t, p, "latent")
	req := operations.ExecuteRequest{SessionID: sid, Resource: sandbox.ResourceAccountProfile, Action: sandbox.ActionRead}
	start := time.Now()
	if _, err := p.Execute(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("an operation took %v, want the 50ms latency", took)
	}

	slow := setup(t, &sandbox.Config{Latency: time.Hour, Now: time.Now})
	p = slow.sb.Provider(sandbox.TMobile)
	req.SessionID = login(t, p, "latent")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Execute(ctx, req)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled operation: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling did not interrupt the latency wait")
	}
}

func TestChallengeExpires(t *testing.T) {
	t.Parallel()
	b := setup(t, &sandbox.Config{ChallengeTTL: time.Minute})
	p := b.sb.Provider(sandbox.UberEats)
	ctx := context.Background()
	res, err := p.Login(ctx, operations.LoginRequest{Attempt: 1, Username: sandbox.UserMFA, Password: sandbox.PasswordGood})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Challenge.ExpiresAt.Equal(b.clock.Now().Add(time.Minute)) {
		t.Fatalf("challenge expires %v", res.Challenge.ExpiresAt)
	}
	b.clock.Add(2 * time.Minute)
	_, err = p.ContinueLogin(ctx, operations.ContinueRequest{SessionID: res.SessionID, ChallengeID: res.Challenge.ID, Response: sandbox.OTPCode})
	if pe := operations.AsError(err); pe.Code != operations.CodeChallengeFailed {
		t.Fatalf("late answer: %v", err)
	}
	_, err = p.ContinueLogin(ctx, operations.ContinueRequest{SessionID: "nope", ChallengeID: res.Challenge.ID, Response: sandbox.OTPCode})
	if pe := operations.AsError(err); pe.Code != operations.CodeUnavailable {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]sandbox.Config{
		"no store":         {},
		"negative latency": {Store: &store.Store{}, Latency: -time.Second},
	} {
		if _, err := sandbox.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// BenchmarkLink runs what a link of four operations costs the sandbox: a
// login, three reads, a write and the close.
func BenchmarkLink(b *testing.B) {
	tb := setup(b, nil)
	p := tb.sb.Provider(sandbox.TMobile)
	ctx := context.Background()
	write := []byte(fmt.Sprintf(`{"cardNumber":"4242424242424242","expirationDate":"12/%02d","cvv":"123","nameOnCard":"A B","billingZip":"10001"}`,
		(time.Now().Year()+2)%100))
	var n sync.Mutex
	seq := 0
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Lock()
			seq++
			i := seq
			n.Unlock()
			res, err := p.Login(ctx, operations.LoginRequest{Attempt: 1, Username: fmt.Sprint("bench", i%100), Password: sandbox.PasswordGood})
			if err != nil {
				b.Fatal(err)
			}
			for _, op := range []operations.ExecuteRequest{
				{Resource: sandbox.ResourcePaymentMethod, Action: sandbox.ActionRead},
				{Resource: sandbox.ResourceBillingStatement, Action: sandbox.ActionRead},
				{Resource: sandbox.ResourceAccountProfile, Action: sandbox.ActionRead},
				{Resource: sandbox.ResourcePaymentMethod, Action: sandbox.ActionWrite, Arguments: write, IdempotencyKey: fmt.Sprint("link_b", i, ":3")},
			} {
				op.SessionID = res.SessionID
				if _, err := p.Execute(ctx, op); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Close(ctx, res.SessionID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
