package connections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// bundle is a store on real Redis, a connections service on it, and a clock
// the test moves.
type bundle struct {
	st    *store.Store
	clock *clockwork.FakeClock
	org   string
	links atomic.Int64
	// provider is what every integration's provider is, for the service.
	provider operations.Provider
	locks    *lockSpy
}

func setup(t *testing.T) *bundle { t.Helper(); return setupWith(t, nil) }

// setupWith is setup with mod applied to the store's configuration.
func setupWith(t *testing.T, mod func(*store.Config)) *bundle {
	t.Helper()
	rdb, renv := testenv.Redis(t)
	kr, err := store.ParseKeyring(store.GenerateKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{clock: clockwork.NewFakeClockAt(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))}
	cfg := store.Config{Redis: rdb, Keyring: kr, Now: b.clock.Now, Prefix: renv.Prefix}
	if mod != nil {
		mod(&cfg)
	}
	if b.st, err = store.New(cfg); err != nil {
		t.Fatal(err)
	}
	org, err := b.st.CreateOrg(context.Background(), "", "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	b.org = org.ID
	b.locks = &lockSpy{Store: b.st}
	return b
}

func (b *bundle) Provider(string) (operations.Provider, bool) { return b.provider, b.provider != nil }

// service returns a service whose providers are p; clock nil is the real one.
func (b *bundle) service(t *testing.T, p operations.Provider, clock clockwork.Clock) *connections.Service {
	t.Helper()
	b.provider = p
	if clock == nil {
		clock = b.clock
	}
	s, err := connections.New(connections.Config{Store: b.locks, Providers: b, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lockSpy is the store, remembering the fencing token of each lock taken.
type lockSpy struct {
	*store.Store
	mu     sync.Mutex
	tokens []string
}

func (l *lockSpy) LockConnection(ctx context.Context, org, id string, ttl time.Duration) (*linkflow.ConnectionLock, error) {
	lock, err := l.Store.LockConnection(ctx, org, id, ttl)
	if err == nil && lock.Token != "" {
		l.mu.Lock()
		l.tokens = append(l.tokens, lock.Token)
		l.mu.Unlock()
	}
	return lock, err
}

func (l *lockSpy) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tokens[len(l.tokens)-1]
}

// connect runs a link for username to success through the store's own
// steps (create, claim, begin, finish) and returns the connection id.
func (b *bundle) connect(t *testing.T, username string, creds *linkflow.Credentials) string {
	t.Helper()
	ctx := context.Background()
	c, err := b.st.CreateLink(ctx, linkflow.NewLink{OrgID: b.org, IntegrationID: "tmobile", ExpiresIn: time.Hour,
		Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, username, "pw"); err != nil {
		t.Fatal(err)
	}
	tok := fmt.Sprintf("tok%d", b.links.Add(1))
	run, err := b.st.BeginRun(ctx, b.org, c.Link.ID, tok, time.Minute)
	if err != nil || run.Verdict != linkflow.RunStart {
		t.Fatalf("begin run: %+v %v", run, err)
	}
	l := run.Link
	l.Status, l.CompletedAt, l.Result = linkflow.StatusSucceeded, b.clock.Now(), json.RawMessage(`{}`)
	fin, err := b.st.FinishRun(ctx, l, tok, &linkflow.ConnectionWrite{ID: run.ConnectionID, IntegrationID: "tmobile",
		Username: username, WebhookURL: "https://hooks.example.com/x", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	return fin.ConnectionID
}

func tokens(n int, expires time.Time) *linkflow.Credentials {
	return &linkflow.Credentials{AccessToken: fmt.Sprintf("at_%d", n), RefreshToken: fmt.Sprintf("rt_%d", n),
		TokenType: "bearer", ExpiresAt: expires}
}

// fakeProvider refreshes to at_<n>/rt_<n>, or fails while fail is set, and
// remembers what it was asked to revoke. It is a Refresher and a Revoker.
type fakeProvider struct {
	operations.Provider     // never called
	base                int // tokens are at_<base+100+n>
	calls               atomic.Int64
	fail                atomic.Bool
	during              func(linkflow.Credentials) // runs inside Refresh and Revoke, before they answer
	expires             time.Time

	mu      sync.Mutex
	revoked []string
}

func (f *fakeProvider) Refresh(ctx context.Context, c linkflow.Credentials) (*linkflow.Credentials, error) {
	n := f.calls.Add(1)
	if f.during != nil {
		f.during(c)
	}
	if f.fail.Load() {
		return nil, errors.New("PROVIDER_UNAVAILABLE: down for maintenance")
	}
	return tokens(f.base+100+int(n), f.expires), nil
}

func (f *fakeProvider) Revoke(ctx context.Context, c linkflow.Credentials) error {
	f.mu.Lock()
	f.revoked = append(f.revoked, c.AccessToken)
	f.mu.Unlock()
	if f.during != nil {
		f.during(c)
	}
	return nil
}

func (f *fakeProvider) revokedTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.revoked...)
}

// plainProvider can neither refresh nor revoke.
type plainProvider struct{ operations.Provider }

func TestRefreshPolicies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.connect(t, "alice", tokens(1, b.clock.Now().Add(90*time.Second)))
	fp := &fakeProvider{expires: b.clock.Now().Add(time.Hour)}
	svc := b.service(t, fp, nil)

	read := func(policy linkflow.RefreshPolicy) *connections.Read {
		t.Helper()
		r, err := svc.Read(ctx, b.org, id, policy, nil)
		if err != nil {
			t.Fatalf("%s: %v", policy, err)
		}
		return r
	}
	if r := read(linkflow.RefreshAuto); r.Refreshed || r.Conn.Credentials.AccessToken != "at_1" {
		t.Fatalf("auto with 90s left refreshed: %+v", r)
	}
	b.clock.Advance(31 * time.Second) // 59s left: within the minute
	if r := read(linkflow.RefreshNone); r.Refreshed {
		t.Fatal("none refreshed")
	}
	r := read(linkflow.RefreshAuto)
	if !r.Refreshed || r.Conn.Credentials.AccessToken != "at_101" || r.Conn.Status != linkflow.ConnHealthy || !r.Conn.LastRefreshedAt.Equal(b.clock.Now()) {
		t.Fatalf("auto within the minute: %+v %+v", r, r.Conn)
	}
	if r := read(linkflow.RefreshAuto); r.Refreshed {
		t.Fatal("auto refreshed a token good for an hour")
	}
	if r := read(linkflow.RefreshForce); !r.Refreshed || r.Conn.Credentials.AccessToken != "at_102" {
		t.Fatalf("force: %+v", r)
	}
	if got := fp.calls.Load(); got != 2 {
		t.Fatalf("provider calls %d, want 2", got)
	}

	// A provider without Refresh: force is refused, auto reads.
	b.clock.Advance(2 * time.Hour)
	plain := b.service(t, plainProvider{}, nil)
	if _, err := plain.Read(ctx, b.org, id, linkflow.RefreshForce, nil); !errors.Is(err, connections.ErrNoRefresh) {
		t.Fatalf("force without a refresher: %v", err)
	}
	if r, err := plain.Read(ctx, b.org, id, linkflow.RefreshAuto, nil); err != nil || r.Refreshed {
		t.Fatalf("auto without a refresher: %+v %v", r, err)
	}

	// Disabled: reads, never refreshes; force is refused.
	svc = b.service(t, fp, nil)
	yes := true
	if _, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if r := read(linkflow.RefreshAuto); r.Refreshed || !r.Conn.Disabled {
		t.Fatalf("auto on a disabled, expired connection: %+v", r)
	}
	if _, err := svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil); !errors.Is(err, connections.ErrCannotRefresh) {
		t.Fatalf("force on a disabled connection: %v", err)
	}
	if _, err := svc.Read(ctx, b.org, "conn_nope", linkflow.RefreshAuto, nil); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("unknown connection: %v", err)
	}
}

func TestRefreshStatusAndEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.connect(t, "bob", tokens(1, b.clock.Now().Add(time.Hour)))
	fp := &fakeProvider{expires: b.clock.Now().Add(time.Hour)}
	fp.fail.Store(true)
	svc := b.service(t, fp, nil)

	r, err := svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.RefreshErr == nil || r.Conn.Status != linkflow.ConnError || r.Conn.StatusMessage == "" || r.Event == nil ||
		r.Conn.Credentials.AccessToken != "at_1" {
		t.Fatalf("failed refresh: %+v %+v", r, r.Conn)
	}
	evs, err := b.st.EventRecords(ctx, []string{r.Event.ID})
	ev, ok := evs[r.Event.ID]
	if err != nil || !ok {
		t.Fatalf("events %+v %v, want the connection's", evs, err)
	}
	var body struct {
		Type string                  `json:"type"`
		Data linkflow.ConnectionView `json:"data"`
	}
	if err := json.Unmarshal(ev.Body, &body); err != nil || body.Type != linkflow.EventConnectionError ||
		ev.ID != r.Event.ID || body.Data.ID != id || body.Data.Status != linkflow.ConnError || !body.Data.Credentials.Redacted ||
		body.Data.Credentials.AccessToken != "" || ev.WebhookURL != "https://hooks.example.com/x" || ev.LinkID != "" {
		t.Fatalf("error event %+v: %s", ev, ev.Body)
	}
	// Failing again changes nothing worth an event.
	if r, err := svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil); err != nil || r.Event != nil || r.Conn.Status != linkflow.ConnError {
		t.Fatalf("second failure: %+v %v", r, err)
	}
	fp.fail.Store(false)
	r, err = svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil)
	if err != nil || r.Conn.Status != linkflow.ConnHealthy || r.Conn.StatusMessage != "" || r.Event == nil {
		t.Fatalf("good refresh: %+v %v", r, err)
	}
	// Each event's message waits in the outbox until published.
	due, err := b.st.DueOutbox(ctx, -time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for _, m := range due {
		if m.Subject == outbox.EventSubject(b.org, linkflow.EventConnectionError) || m.Subject == outbox.EventSubject(b.org, linkflow.EventConnectionHealthy) ||
			m.Subject == outbox.EventSubject(b.org, linkflow.EventLinkSucceeded) {
			events++
		}
	}
	if events != 3 { // link.succeeded, connection.error, connection.healthy
		t.Fatalf("outbox has %d events: %+v", events, due)
	}
}

// A refresher whose lock expired while it waited on the provider cannot
// overwrite the refresh that took over; what it got is dropped, not revoked
// (a provider revoking the whole grant would kill the kept credentials).
func TestRefreshFencedAfterLockExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.connect(t, "carol", tokens(1, b.clock.Now().Add(time.Hour)))
	second := &fakeProvider{base: 100, expires: b.clock.Now().Add(time.Hour)}
	first := &fakeProvider{expires: b.clock.Now().Add(time.Hour)}
	svc := b.service(t, first, nil)
	var secondRead *connections.Read
	first.during = func(linkflow.Credentials) {
		// The lock expires (as if the provider call outlived it); another
		// read takes it and commits.
		if err := b.st.UnlockConnection(ctx, b.org, id, b.locks.last()); err != nil {
			t.Error(err)
		}
		other, err := connections.New(connections.Config{Store: b.st, Providers: fixed{second}, Clock: b.clock})
		if err != nil {
			t.Error(err)
			return
		}
		if secondRead, err = other.Read(ctx, b.org, id, linkflow.RefreshForce, nil); err != nil {
			t.Error(err)
		}
	}
	r, err := svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !secondRead.Refreshed || secondRead.Conn.Credentials.AccessToken != "at_201" {
		t.Fatalf("the read that took over: %+v", secondRead)
	}
	if r.Refreshed || r.Conn.Credentials.AccessToken != "at_201" {
		t.Fatalf("the fenced refresher overwrote or claimed a refresh: %+v %+v", r, r.Conn.Credentials)
	}
	if got := first.revokedTokens(); len(got) != 0 {
		t.Fatalf("the fenced refresher revoked %v", got)
	}
	lock, err := b.st.LockConnection(ctx, b.org, id, time.Minute)
	if err != nil || lock.Token == "" {
		t.Fatalf("lock left behind: %+v %v", lock, err)
	}
}

type fixed struct{ p operations.Provider }

func (f fixed) Provider(string) (operations.Provider, bool) { return f.p, true }

// A link that renews the connection while a refresh is in flight wins: its
// credentials are newer than the refresh's.
func TestRefreshSupersededByReconnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.connect(t, "dave", tokens(1, b.clock.Now().Add(time.Hour)))
	fp := &fakeProvider{expires: b.clock.Now().Add(time.Hour)}
	fp.during = func(linkflow.Credentials) {
		if again := b.connect(t, "dave", tokens(7, b.clock.Now().Add(time.Hour))); again != id {
			t.Errorf("reconnect made %s, want %s", again, id)
		}
	}
	r, err := b.service(t, fp, nil).Read(ctx, b.org, id, linkflow.RefreshForce, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Refreshed || r.Conn.Credentials.AccessToken != "at_7" || len(r.Conn.LinkIDs) != 2 {
		t.Fatalf("after a reconnect during refresh: %+v %+v", r, r.Conn)
	}
	if got := fp.revokedTokens(); len(got) != 0 {
		t.Fatalf("a refresh that lost to a link revoked %v", got)
	}
}

// Concurrent forced reads share one provider call.
func TestConcurrentRefreshOneProviderCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.connect(t, "erin", tokens(1, b.clock.Now().Add(time.Hour)))
	release := make(chan struct{})
	fp := &fakeProvider{expires: b.clock.Now().Add(time.Hour), during: func(linkflow.Credentials) { <-release }}
	svc := b.service(t, fp, clockwork.NewRealClock()) // the waiting reads poll on real timers
	const n = 10
	var waiting atomic.Int64
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Go(func() {
			r, err := svc.Read(ctx, b.org, id, linkflow.RefreshForce, func() { waiting.Add(1) })
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = r.Conn.Credentials.AccessToken
		})
	}
	testenv.Eventually(t, 5*time.Second, "every other read to wait", func() bool { return waiting.Load() == n-1 })
	close(release)
	wg.Wait()
	for i, tok := range got {
		if tok != "at_101" {
			t.Fatalf("read %d got %q", i, tok)
		}
	}
	if c := fp.calls.Load(); c != 1 {
		t.Fatalf("%d provider calls", c)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.connect(t, "frank", tokens(1, b.clock.Now().Add(time.Hour)))
	fp := &fakeProvider{}
	svc := b.service(t, fp, nil)
	rev, err := svc.Delete(ctx, b.org, id)
	if err != nil || !rev.AtProvider || rev.Conn.Status != linkflow.ConnRevoked || rev.Conn.Credentials != nil || rev.Conn.RevokedAt.IsZero() {
		t.Fatalf("delete: %+v %v", rev, err)
	}
	if got := fp.revokedTokens(); len(got) != 1 || got[0] != "at_1" {
		t.Fatalf("revoked at the provider: %v", got)
	}
	again, err := svc.Delete(ctx, b.org, id)
	if err != nil || !again.Already || len(fp.revokedTokens()) != 1 {
		t.Fatalf("second delete: %+v %v", again, err)
	}
	if _, err := svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil); !errors.Is(err, connections.ErrCannotRefresh) {
		t.Fatalf("forcing a tombstone: %v", err)
	}
	// A provider that cannot revoke: the credentials are deleted here only.
	other := b.connect(t, "frida", tokens(2, b.clock.Now().Add(time.Hour)))
	if rev, err := b.service(t, plainProvider{}, nil).Delete(ctx, b.org, other); err != nil || rev.AtProvider ||
		rev.Conn.Status != linkflow.ConnRevoked {
		t.Fatalf("delete without a revoker: %+v %v", rev, err)
	}
}

// A connection whose credentials cannot be opened is still read without
// them. Sealed with a key this process is not given (a key roll under way, or
// a key retired too early), it is neither refreshed nor deleted here, since a
// process given the key could revoke them at the provider: ErrUnknownKey,
// naming the key. Damaged, a forced refresh says so, and a delete keeps a
// tombstone saying the credentials were not revoked at the provider.
func TestUnreadableCredentials(t *testing.T) {
	t.Parallel()
	var cfg store.Config
	b := setupWith(t, func(c *store.Config) { cfg = *c })
	ctx := context.Background()
	id := b.connect(t, "ursula", tokens(1, b.clock.Now().Add(time.Hour)))
	fp := &fakeProvider{}
	b.provider = fp
	serve := func(spec string) (*store.Store, *connections.Service) {
		kr, err := store.ParseKeyring(spec)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Keyring = kr
		st, err := store.New(c)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := connections.New(connections.Config{Store: st, Providers: b, Clock: b.clock})
		if err != nil {
			t.Fatal(err)
		}
		return st, svc
	}

	// Another key: k1 is unknown to this process.
	st, svc := serve(store.GenerateKey("k2"))
	c, err := st.Connection(ctx, b.org, id)
	if err != nil || !c.Unreadable || c.UnknownKey != "k1" || c.Credentials != nil || c.Status != linkflow.ConnHealthy {
		t.Fatalf("connection sealed with a key not given: %+v %v", c, err)
	}
	if v := c.View(false); !v.Credentials.Redacted {
		t.Fatalf("its view: %+v, want credentials held and not shown", v.Credentials)
	}
	if r, err := svc.Read(ctx, b.org, id, linkflow.RefreshAuto, nil); err != nil || !r.Conn.Unreadable {
		t.Fatalf("read: %+v %v", r, err)
	}
	if _, err := svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil); !errors.Is(err, linkflow.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("forced refresh: %v", err)
	}
	if _, err := svc.Delete(ctx, b.org, id); !errors.Is(err, linkflow.ErrUnknownKey) {
		t.Fatalf("delete: %v", err)
	}
	if c, err := b.st.Connection(ctx, b.org, id); err != nil || c.Status != linkflow.ConnHealthy || c.Credentials == nil {
		t.Fatalf("after the refused delete, with the key: %+v %v", c, err)
	}

	// The same key id, other bytes: damaged.
	st, svc = serve(store.GenerateKey("k1"))
	if c, err := st.Connection(ctx, b.org, id); err != nil || !c.Unreadable || c.UnknownKey != "" {
		t.Fatalf("damaged credentials: %+v %v", c, err)
	}
	if _, err := svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil); !errors.Is(err, connections.ErrCannotRefresh) ||
		!strings.Contains(err.Error(), "damaged") {
		t.Fatalf("forced refresh: %v", err)
	}
	rev, err := svc.Delete(ctx, b.org, id)
	if err != nil || rev.AtProvider || rev.Conn.Status != linkflow.ConnRevoked || !strings.Contains(rev.Conn.StatusMessage, "could not be opened") {
		t.Fatalf("delete: %+v %v", rev, err)
	}
	if got := fp.revokedTokens(); len(got) != 0 || fp.calls.Load() != 0 {
		t.Fatalf("the provider was called: revoked %v, %d refreshes", got, fp.calls.Load())
	}
}

// A link that renews the connection while it is being deleted brought new
// credentials: the delete revokes those too before it keeps the tombstone.
func TestDeleteSupersededByReconnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.connect(t, "gina", tokens(1, b.clock.Now().Add(time.Hour)))
	var once sync.Once
	fp := &fakeProvider{}
	fp.during = func(linkflow.Credentials) {
		once.Do(func() { b.connect(t, "gina", tokens(2, b.clock.Now().Add(time.Hour))) })
	}
	rev, err := b.service(t, fp, nil).Delete(ctx, b.org, id)
	if err != nil || rev.Conn.Status != linkflow.ConnRevoked || rev.Conn.Credentials != nil || len(rev.Conn.LinkIDs) != 2 {
		t.Fatalf("delete: %+v %v", rev, err)
	}
	if got := fp.revokedTokens(); len(got) != 2 || got[0] != "at_1" || got[1] != "at_2" {
		t.Fatalf("revoked %v, want both links' tokens", got)
	}
}

// A Redis that does not answer when a refresh or a delete commits, after
// the provider rotated or revoked the tokens, is asked again while the lock
// holds: the rotated refresh token is kept, the revocation recorded.
func TestCommitRidesOutARedisBlip(t *testing.T) {
	t.Parallel()
	refuse := &testenv.Refuse{Commands: []string{"evalsha", "eval"}} // every script
	b := setupWith(t, func(c *store.Config) { c.Redis.AddHook(refuse); c.NoAutoPipeline = true })
	ctx := context.Background()
	id := b.connect(t, "blip", tokens(1, b.clock.Now().Add(time.Hour)))
	fp := &fakeProvider{during: func(linkflow.Credentials) { refuse.On.Store(true) }}
	svc := b.service(t, fp, nil)
	blip := func(what string, op func() error) {
		t.Helper()
		refuse.Refused.Store(0)
		done := make(chan error, 1)
		go func() { done <- op() }()
		testenv.Eventually(t, 10*time.Second, what+" to meet the refusal", func() bool { return refuse.Refused.Load() > 0 })
		refuse.On.Store(false)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not end", what)
		}
	}
	var read *connections.Read
	blip("the refresh", func() (err error) {
		read, err = svc.Read(ctx, b.org, id, linkflow.RefreshForce, nil)
		return err
	})
	got, err := b.st.Connection(ctx, b.org, id)
	if err != nil || !read.Refreshed || got.Credentials.RefreshToken != "rt_101" || got.Status != linkflow.ConnHealthy {
		t.Fatalf("after the refresh: read %+v, stored %+v %v", read, got, err)
	}
	var rev *connections.Revocation
	blip("the delete", func() (err error) {
		rev, err = svc.Delete(ctx, b.org, id)
		return err
	})
	if got, err := b.st.Connection(ctx, b.org, id); err != nil || got.Status != linkflow.ConnRevoked || !rev.AtProvider || got.Credentials != nil {
		t.Fatalf("after the delete: %+v %v", got, err)
	}
}

// A delete whose commit was applied and whose reply was lost finds, on its
// next try, the revocation it made: its own (logged as such), not one that
// happened before it.
func TestDeleteWhoseReplyWasLost(t *testing.T) {
	t.Parallel()
	lose := &testenv.Refuse{Commands: []string{"evalsha", "eval"}, LoseReply: true} // every script
	b := setupWith(t, func(c *store.Config) { c.Redis.AddHook(lose); c.NoAutoPipeline = true })
	id := b.connect(t, "lost", tokens(1, b.clock.Now().Add(time.Hour)))
	fp := &fakeProvider{during: func(linkflow.Credentials) { lose.On.Store(true) }}
	rev, err := deleteLosingAReply(t, b.service(t, fp, nil), b.org, id, lose)
	if err != nil || rev.Already || !rev.AtProvider || rev.Conn.Status != linkflow.ConnRevoked {
		t.Fatalf("delete: %+v %v, want this call's revocation", rev, err)
	}
	if got := fp.revokedTokens(); len(got) != 1 {
		t.Fatalf("revoked at the provider: %v", got)
	}
}

// A delete fenced three times, the third time after its commit was applied
// and the reply lost, reports its own revocation, not busy.
func TestDeleteWhoseThirdTryWasApplied(t *testing.T) {
	t.Parallel()
	lose := &testenv.Refuse{Commands: []string{"evalsha", "eval"}, LoseReply: true} // every script
	b := setupWith(t, func(c *store.Config) { c.Redis.AddHook(lose); c.NoAutoPipeline = true })
	ctx := context.Background()
	id := b.connect(t, "third", tokens(1, b.clock.Now().Add(time.Hour)))
	var calls atomic.Int64
	fp := &fakeProvider{during: func(linkflow.Credentials) {
		b.clock.Advance(time.Second) // each try stamps its own time: the third's is the one to find
		if calls.Add(1) < 3 {
			// The lock expires during the provider's call: fenced.
			if err := b.st.UnlockConnection(ctx, b.org, id, b.locks.last()); err != nil {
				t.Error(err)
			}
			return
		}
		lose.On.Store(true)
	}}
	rev, err := deleteLosingAReply(t, b.service(t, fp, nil), b.org, id, lose)
	if err != nil || rev.Already || !rev.AtProvider || rev.Conn.Status != linkflow.ConnRevoked {
		t.Fatalf("delete: %+v %v, want this call's revocation", rev, err)
	}
	if got := fp.revokedTokens(); len(got) != 3 {
		t.Fatalf("revoked at the provider %d times, want 3 (one a try)", len(got))
	}
}

// deleteLosingAReply runs svc.Delete while the provider's call turns lose
// on: once a reply is lost, lose is turned off and the delete's answer
// awaited.
func deleteLosingAReply(t *testing.T, svc *connections.Service, org, id string, lose *testenv.Refuse) (*connections.Revocation, error) {
	t.Helper()
	done := make(chan struct{})
	var rev *connections.Revocation
	var err error
	go func() { defer close(done); rev, err = svc.Delete(context.Background(), org, id) }()
	testenv.Eventually(t, 10*time.Second, "a commit's reply to be lost", func() bool { return lose.Refused.Load() > 0 })
	lose.On.Store(false)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the delete did not end")
	}
	return rev, err
}

// Stop waits for a refresh and a revocation that are at the provider, and
// for their commits: the token the provider rotated, and its revocation,
// are recorded before the process goes on to close Redis, even when the
// requests that asked for them were cut off. New ones are refused at once.
func TestStopWaitsForProviderCallsUnderTheLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	refreshed := b.connect(t, "fay", tokens(1, b.clock.Now().Add(time.Hour)))
	revoked := b.connect(t, "gus", tokens(2, b.clock.Now().Add(time.Hour)))
	other := b.connect(t, "hal", tokens(3, b.clock.Now().Add(time.Hour)))
	// The provider's calls for the first two wait for release.
	release := make(chan struct{})
	var entered atomic.Int64
	fp := &fakeProvider{expires: b.clock.Now().Add(time.Hour), during: func(c linkflow.Credentials) {
		if c.AccessToken == "at_1" || c.AccessToken == "at_2" {
			entered.Add(1)
			<-release
		}
	}}
	svc := b.service(t, fp, nil)

	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := svc.Read(ctx, b.org, refreshed, linkflow.RefreshForce, nil); err != nil {
			t.Errorf("refresh: %v", err)
		}
	})
	wg.Go(func() {
		if _, err := svc.Delete(ctx, b.org, revoked); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	testenv.Eventually(t, 10*time.Second, "both calls at the provider", func() bool { return entered.Load() == 2 })

	stopped := make(chan struct{})
	go func() { svc.Stop(); close(stopped) }()
	// A refresh of another connection (its provider call does not wait) is
	// refused once Stop began.
	testenv.Eventually(t, 10*time.Second, "new provider calls refused", func() bool {
		_, err := svc.Read(ctx, b.org, other, linkflow.RefreshForce, nil)
		return errors.Is(err, connections.ErrStopping)
	})
	select {
	case <-stopped:
		t.Fatal("Stop returned while two provider calls were in flight")
	default:
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the provider answered")
	}
	c, err := b.st.Connection(ctx, b.org, refreshed)
	if err != nil {
		t.Fatal(err)
	}
	if c.Credentials == nil || c.Credentials.AccessToken == "at_1" {
		t.Fatalf("after Stop the connection holds %+v, want the rotated tokens", c.Credentials)
	}
	if c, err = b.st.Connection(ctx, b.org, revoked); err != nil || c.Status != linkflow.ConnRevoked {
		t.Fatalf("after Stop the deleted connection is %+v (%v), want revoked", c, err)
	}
	wg.Wait()
	svc.Stop()
	if _, err := svc.Delete(ctx, b.org, other); !errors.Is(err, connections.ErrStopping) {
		t.Fatalf("delete after Stop: %v, want ErrStopping", err)
	}
}

// A connection.* event shows the connection as it is when the refresh
// commits: a PATCH made during the provider's call is in it, and a
// connection that keeps changing does not hold the commit back.
func TestRefreshEventShowsAChangeDuringTheCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.connect(t, "gina", tokens(1, b.clock.Now().Add(time.Hour)))
	patches := 0
	patch := func() {
		patches++
		name := fmt.Sprintf("phone %d", patches)
		if _, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{
			Metadata: json.RawMessage(fmt.Sprintf(`{"plan":"p%d"}`, patches)), DisplayName: &name}); err != nil {
			t.Error(err)
		}
	}
	shown := func(r *connections.Read) linkflow.ConnectionView {
		t.Helper()
		if r.Event == nil {
			t.Fatalf("no event recorded: %+v", r)
		}
		evs, err := b.st.EventRecords(ctx, []string{r.Event.ID})
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Data linkflow.ConnectionView `json:"data"`
		}
		if err := json.Unmarshal(evs[r.Event.ID].Body, &body); err != nil {
			t.Fatal(err)
		}
		return body.Data
	}

	fp := &fakeProvider{expires: b.clock.Now().Add(time.Hour)}
	fp.fail.Store(true)
	fp.during = func(linkflow.Credentials) { patch() }
	r, err := b.service(t, fp, nil).Read(ctx, b.org, id, linkflow.RefreshForce, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := shown(r); string(v.Metadata) != `{"plan":"p1"}` || v.DisplayName != "phone 1" || v.Status != linkflow.ConnError {
		t.Fatalf("the connection.error event shows %+v, want the patch made during the call", v)
	}

	// A connection patched before every commit: the refresh builds the
	// event once more, then commits it.
	fp.fail.Store(false)
	fp.during = nil
	s, err := connections.New(connections.Config{Store: patchBeforeCommit{b.locks, patch}, Providers: b, Clock: b.clock})
	if err != nil {
		t.Fatal(err)
	}
	before := patches
	r, err = s.Read(ctx, b.org, id, linkflow.RefreshForce, nil)
	if err != nil || !r.Refreshed || r.Conn.Status != linkflow.ConnHealthy {
		t.Fatalf("a refresh over a connection that keeps changing: %+v %v", r, err)
	}
	if v, want := shown(r), fmt.Sprintf(`{"plan":"p%d"}`, patches-1); patches-before != 2 || string(v.Metadata) != want {
		t.Fatalf("%d commits, the event shows %s; want 2, showing %s (read before the last)", patches-before, v.Metadata, want)
	}
}

// patchBeforeCommit is the store, calling patch before each refresh commit.
type patchBeforeCommit struct {
	*lockSpy
	patch func()
}

func (p patchBeforeCommit) CommitRefresh(ctx context.Context, org, id string, c linkflow.RefreshCommit) (*linkflow.Message, error) {
	p.patch()
	return p.lockSpy.CommitRefresh(ctx, org, id, c)
}
