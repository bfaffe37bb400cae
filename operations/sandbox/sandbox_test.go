package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/linkflow/linkflow"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/conformance"
	"github.com/linkflow/linkflow/operations/sandbox"
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
	store sandbox.AccountStore
	sb    *sandbox.Sandbox
	reg   *operations.Registry
	clock *clock
}

// setup starts Redis and a sandbox on it. cfg's Store, Now and Logger are
// filled in; a nil cfg uses a real clock.
func setup(t testing.TB, cfg *sandbox.Config) *testBundle {
	t.Helper()
	rdb, _ := testenv.Redis(t)
	st := sandbox.NewRedisStore(rdb)
	b := &testBundle{store: st}
	if cfg == nil {
		cfg = &sandbox.Config{}
	} else if cfg.Now == nil {
		b.clock = &clock{t: time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)}
		cfg.Now = b.clock.Now
	}
	cfg.Store, cfg.Logger = st, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	var err error
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
	if pe := operations.AsError(err); pe.Code != linkflow.FailureProviderUnavailable || !pe.Transient {
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
	acct, err := other.Account(ctx, "", sandbox.Verizon, "racer")
	if err != nil {
		t.Fatal(err)
	}
	if len(acct.WriteLog) != 1 || acct.PaymentMethods[0].Last4 != "4242" || !acct.PaymentMethods[0].IsDefault {
		t.Fatalf("account after racing writes: %+v", acct)
	}
	if _, err := b.sb.Account(ctx, "", "nope", "racer"); !errors.Is(err, sandbox.ErrUnknownIntegration) {
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
	if pe := operations.AsError(err); pe.Code != linkflow.FailureChallengeFailed {
		t.Fatalf("late answer: %v", err)
	}
	_, err = p.ContinueLogin(ctx, operations.ContinueRequest{SessionID: "nope", ChallengeID: res.Challenge.ID, Response: sandbox.OTPCode})
	if pe := operations.AsError(err); pe.Code != linkflow.FailureProviderUnavailable {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]sandbox.Config{
		"no store":         {},
		"negative latency": {Store: sandbox.NewRedisStore(nil), Latency: -time.Second},
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

// countingStore counts the sandbox's calls to its store: each is one round
// trip to Redis.
type countingStore struct {
	sandbox.AccountStore
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingStore) count(name string) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.calls
	c.calls = map[string]int{}
	return m
}

func (c *countingStore) StartSandboxSession(ctx context.Context, s sandbox.SessionStart) (sandbox.SessionStarted, error) {
	c.count("start")
	return c.AccountStore.StartSandboxSession(ctx, s)
}

func (c *countingStore) ApplySandboxWrite(ctx context.Context, a sandbox.AccountRef, w sandbox.WriteRecord) (sandbox.WriteRecord, bool, error) {
	c.count("write")
	return c.AccountStore.ApplySandboxWrite(ctx, a, w)
}

func (c *countingStore) SandboxItems(ctx context.Context, a sandbox.AccountRef, resource string) ([]json.RawMessage, error) {
	c.count("items")
	return c.AccountStore.SandboxItems(ctx, a, resource)
}

func (c *countingStore) CloseSandboxSession(ctx context.Context, integration, id string) error {
	c.count("close")
	return c.AccountStore.CloseSandboxSession(ctx, integration, id)
}

func (c *countingStore) RenewSandboxSession(ctx context.Context, integration, id string, expiresAt time.Time) error {
	c.count("renew")
	return c.AccountStore.RenewSandboxSession(ctx, integration, id, expiresAt)
}

// A session costs one round trip to log in, one per write and one to close;
// reads cost none.
func TestSessionRoundTrips(t *testing.T) {
	t.Parallel()
	b := setup(t, &sandbox.Config{})
	cs := &countingStore{AccountStore: b.store, calls: map[string]int{}}
	sb, err := sandbox.New(sandbox.Config{Store: cs, Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := sb.Provider(sandbox.TMobile)
	exec := func(sid, resource, action string, args []byte, key string) {
		t.Helper()
		if _, err := p.Execute(ctx, operations.ExecuteRequest{SessionID: sid, Resource: resource, Action: action, Arguments: args, IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, want map[string]int) {
		t.Helper()
		if got := cs.take(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: store calls %v, want %v", step, got, want)
		}
	}

	sid := login(t, p, "trips")
	check("login", map[string]int{"start": 1})
	for range 3 {
		exec(sid, sandbox.ResourcePaymentMethod, sandbox.ActionRead, nil, "")
		exec(sid, sandbox.ResourceBillingStatement, sandbox.ActionRead, nil, "")
		exec(sid, sandbox.ResourceAccountProfile, sandbox.ActionRead, nil, "")
	}
	check("reads", map[string]int{})
	exec(sid, sandbox.ResourcePaymentMethod, sandbox.ActionWrite, cardArgs(b.clock.Now(), "4242424242424242"), "link_t:0")
	exec(sid, sandbox.ResourcePaymentMethod, sandbox.ActionRead, nil, "")
	check("a write and a read", map[string]int{"write": 1})
	if err := p.Close(ctx, sid); err != nil {
		t.Fatal(err)
	}
	check("close", map[string]int{"close": 1})

	// A challenge: one round trip to count the session, one to complete the
	// login.
	res, err := p.Login(ctx, operations.LoginRequest{Attempt: 1, Username: sandbox.UserMFA, Password: sandbox.PasswordGood})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContinueLogin(ctx, operations.ContinueRequest{SessionID: res.SessionID, ChallengeID: res.Challenge.ID, Response: sandbox.OTPCode}); err != nil {
		t.Fatal(err)
	}
	exec(res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, nil, "")
	check("mfa login", map[string]int{"start": 2})
}

func cardArgs(now time.Time, number string) []byte {
	return []byte(fmt.Sprintf(`{"cardNumber":%q,"expirationDate":"12/%02d","cvv":"123","nameOnCard":"A B","billingZip":"10001"}`,
		number, (now.Year()+2)%100))
}

// A session reads the account as it was when its login completed, plus its
// own writes: another session's later write shows in a new session, not in
// one already logged in.
func TestSessionSnapshot(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	// A second process on the same Redis.
	other, err := sandbox.New(sandbox.Config{Store: b.store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, q := b.sb.Provider(sandbox.ATT), other.Provider(sandbox.ATT)
	read := func(p operations.Provider, sid string) []sandbox.PaymentMethod {
		t.Helper()
		out, err := p.Execute(ctx, operations.ExecuteRequest{SessionID: sid, Resource: sandbox.ResourcePaymentMethod, Action: sandbox.ActionRead})
		if err != nil {
			t.Fatal(err)
		}
		var pms []sandbox.PaymentMethod
		if err := json.Unmarshal(out, &pms); err != nil {
			t.Fatal(err)
		}
		return pms
	}
	write := func(p operations.Provider, sid, number, key string) sandbox.PaymentMethod {
		t.Helper()
		out, err := p.Execute(ctx, operations.ExecuteRequest{SessionID: sid, Resource: sandbox.ResourcePaymentMethod, Action: sandbox.ActionWrite,
			Arguments: cardArgs(time.Now(), number), IdempotencyKey: key})
		if err != nil {
			t.Fatal(err)
		}
		var pm sandbox.PaymentMethod
		if err := json.Unmarshal(out, &pm); err != nil {
			t.Fatal(err)
		}
		return pm
	}
	ids := func(pms []sandbox.PaymentMethod) []string {
		var out []string
		for _, pm := range pms {
			out = append(out, pm.ID)
		}
		return out
	}
	const user = "snapshot"

	s1 := login(t, p, user)
	base := read(p, s1)
	// Its own write shows in the session's next read, first and the
	// default.
	mine := write(p, s1, "5555555555554444", "link_s:0")
	if got := read(p, s1); fmt.Sprint(ids(got)) != fmt.Sprint(append([]string{mine.ID}, ids(base)...)) || !got[0].IsDefault || got[1].IsDefault {
		t.Fatalf("after its own write the session reads %+v", got)
	}

	// Another process's session writes; s1 keeps its view, a new session
	// in either process sees both cards.
	s2 := login(t, q, user)
	theirs := write(q, s2, "378282246310005", "link_s:1")
	if got := read(p, s1); got[0].ID != mine.ID || len(got) != len(base)+1 {
		t.Fatalf("a session logged in before another's write reads %v", ids(got))
	}
	want := fmt.Sprint(append([]string{theirs.ID, mine.ID}, ids(base)...))
	for _, np := range []operations.Provider{p, q} {
		if got := read(np, login(t, np, user)); fmt.Sprint(ids(got)) != want {
			t.Fatalf("a new session reads %v, want %s", ids(got), want)
		}
	}

	// Replaying the other session's write hands s1 that card, which it then
	// reads, once.
	if again := write(p, s1, "4242424242424242", "link_s:1"); again.ID != theirs.ID {
		t.Fatalf("a replayed write returned %+v, want %+v", again, theirs)
	}
	for range 2 {
		if got := read(p, s1); fmt.Sprint(ids(got)) != want {
			t.Fatalf("after a replay the session reads %v, want %s", ids(got), want)
		}
		write(p, s1, "4242424242424242", "link_s:0")
	}

	// A login that waited for a challenge sees the account as it was when
	// the challenge was answered.
	mfaLogin := func(p operations.Provider) *operations.LoginResult {
		t.Helper()
		res, err := p.Login(ctx, operations.LoginRequest{Attempt: 1, Username: sandbox.UserMFA, Password: sandbox.PasswordGood})
		if err != nil || res.Challenge == nil {
			t.Fatalf("mfa login: %+v, %v", res, err)
		}
		return res
	}
	answer := func(p operations.Provider, res *operations.LoginResult) string {
		t.Helper()
		if _, err := p.ContinueLogin(ctx, operations.ContinueRequest{SessionID: res.SessionID, ChallengeID: res.Challenge.ID, Response: sandbox.OTPCode}); err != nil {
			t.Fatal(err)
		}
		return res.SessionID
	}
	waiting := mfaLogin(p)
	writer := answer(q, mfaLogin(q))
	card := write(q, writer, "6011111111111117", "link_m:0")
	if got := read(p, answer(p, waiting)); got[0].ID != card.ID {
		t.Fatalf("a login completed after a write reads %v, want %s first", ids(got), card.ID)
	}
}

// lostReplyStore does a login's work but loses the reply, as when the
// connection drops after Redis ran the pipeline.
type lostReplyStore struct{ sandbox.AccountStore }

func (l lostReplyStore) StartSandboxSession(ctx context.Context, s sandbox.SessionStart) (sandbox.SessionStarted, error) {
	if _, err := l.AccountStore.StartSandboxSession(ctx, s); err != nil {
		return sandbox.SessionStarted{}, err
	}
	return sandbox.SessionStarted{}, errors.New("connection reset")
}

// A login whose round trip failed part way leaves no session counted.
func TestFailedLoginStopsCounting(t *testing.T) {
	t.Parallel()
	b := setup(t, &sandbox.Config{})
	sb, err := sandbox.New(sandbox.Config{Store: lostReplyStore{b.store}, Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, user := range []string{sandbox.UserGood, sandbox.UserMFA} {
		res, err := sb.Provider(sandbox.Verizon).Login(ctx, operations.LoginRequest{Attempt: 1, Username: user, Password: sandbox.PasswordGood})
		if err == nil || res != nil {
			t.Fatalf("%s: login %+v, %v; want an error", user, res, err)
		}
	}
	if n, err := sb.LiveSessions(ctx, sandbox.Verizon); err != nil || n != 0 {
		t.Fatalf("live sessions after failed logins: %d, %v", n, err)
	}
}

// Sandbox accounts belong to the organization whose link logged in: the same
// username in two organizations is two accounts, and one's writes do not show
// in the other.
func TestAccountsPerOrganization(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	p := b.sb.Provider(sandbox.TMobile)
	write := func(org string) {
		t.Helper()
		res, err := p.Login(ctx, operations.LoginRequest{OrgID: org, Attempt: 1, Username: "shared", Password: sandbox.PasswordGood})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx, res.SessionID)
		args := fmt.Sprintf(`{"cardNumber":"4242424242424242","expirationDate":"12/%02d","cvv":"123","nameOnCard":"A B","billingZip":"10001"}`,
			(time.Now().Year()+2)%100)
		if _, err := p.Execute(ctx, operations.ExecuteRequest{SessionID: res.SessionID, Resource: sandbox.ResourcePaymentMethod,
			Action: sandbox.ActionWrite, Arguments: json.RawMessage(args), IdempotencyKey: "link_same:1"}); err != nil {
			t.Fatal(err)
		}
	}
	write("org_a")
	a, err := b.sb.Account(ctx, "org_a", sandbox.TMobile, "shared")
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.sb.Account(ctx, "org_b", sandbox.TMobile, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.WriteLog) != 1 || len(other.WriteLog) != 0 {
		t.Fatalf("write logs: org_a %d, org_b %d; want 1 and 0", len(a.WriteLog), len(other.WriteLog))
	}
	// The same idempotency key in the other organization is its own write.
	write("org_b")
	if other, err = b.sb.Account(ctx, "org_b", sandbox.TMobile, "shared"); err != nil || len(other.WriteLog) != 1 {
		t.Fatalf("org_b after its write: %+v, %v", other, err)
	}
}
