package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// connBundle is a store on real Redis with a clock the test moves.
type connBundle struct {
	st    *store.Store
	now   atomic.Int64 // unix ms
	org   string
	links atomic.Int64
}

func newConnBundle(t *testing.T) *connBundle {
	t.Helper()
	rdb, _ := testenv.Redis(t)
	kr, err := store.ParseKeyring(store.GenerateKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	b := &connBundle{}
	b.now.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixMilli())
	if b.st, err = store.New(store.Config{Redis: rdb, Keyring: kr, Now: b.clock}); err != nil {
		t.Fatal(err)
	}
	org, err := b.st.CreateOrg(context.Background(), "", "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	b.org = org.ID
	return b
}

func (b *connBundle) clock() time.Time { return time.UnixMilli(b.now.Load()) }

func (b *connBundle) advance(d time.Duration) { b.now.Add(d.Milliseconds()) }

// connect runs a link for username to success through the store's own
// steps (create, claim, begin, finish) and returns the connection id.
func (b *connBundle) connect(t *testing.T, integration, username, externalUser string, creds *linkflow.Credentials) string {
	t.Helper()
	ctx := context.Background()
	c, err := b.st.CreateLink(ctx, linkflow.NewLink{OrgID: b.org, IntegrationID: integration, ExpiresIn: time.Hour,
		ExternalUserID: externalUser, Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}}})
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
	l.Status, l.CompletedAt, l.Result = linkflow.StatusSucceeded, b.clock(), json.RawMessage(`{}`)
	fin, err := b.st.FinishRun(ctx, l, tok, &linkflow.ConnectionWrite{ID: run.ConnectionID, IntegrationID: integration,
		Username: username, ExternalUserID: externalUser, WebhookURL: "https://hooks.example.com/x", Credentials: creds})
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
// remembers what it was asked to revoke.
type fakeProvider struct {
	base    int // tokens are at_<base+100+n>
	calls   atomic.Int64
	fail    atomic.Bool
	during  func() // runs inside Refresh, before it answers
	expires time.Time

	mu      sync.Mutex
	revoked []string
}

func (f *fakeProvider) Refresh(ctx context.Context, c linkflow.Credentials) (*linkflow.Credentials, error) {
	n := f.calls.Add(1)
	if f.during != nil {
		f.during()
	}
	if f.fail.Load() {
		return nil, errors.New("PROVIDER_UNAVAILABLE: down for maintenance")
	}
	return tokens(f.base+100+int(n), f.expires), nil
}

func (f *fakeProvider) Revoke(ctx context.Context, c linkflow.Credentials) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, c.AccessToken)
	return nil
}

func (f *fakeProvider) revokedTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.revoked...)
}

func (f *fakeProvider) options(policy store.RefreshPolicy) store.ReadOptions {
	return store.ReadOptions{Policy: policy, Refresher: func(string) store.Refresher { return f }}
}

func TestRefreshPolicies(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "alice", "", tokens(1, b.clock().Add(90*time.Second)))
	fp := &fakeProvider{expires: b.clock().Add(time.Hour)}

	read := func(policy store.RefreshPolicy, o *store.ReadOptions) *store.ConnectionRead {
		t.Helper()
		opts := fp.options(policy)
		if o != nil {
			opts = *o
		}
		r, err := b.st.ReadConnection(ctx, b.org, id, opts)
		if err != nil {
			t.Fatalf("%s: %v", policy, err)
		}
		return r
	}
	if r := read(store.RefreshAuto, nil); r.Refreshed || r.Conn.Credentials.AccessToken != "at_1" {
		t.Fatalf("auto with 90s left refreshed: %+v", r)
	}
	b.advance(31 * time.Second) // 59s left: within the minute
	if r := read(store.RefreshNone, nil); r.Refreshed {
		t.Fatal("none refreshed")
	}
	r := read(store.RefreshAuto, nil)
	if !r.Refreshed || r.Conn.Credentials.AccessToken != "at_101" || r.Conn.Status != linkflow.ConnHealthy || !r.Conn.LastRefreshedAt.Equal(b.clock()) {
		t.Fatalf("auto within the minute: %+v %+v", r, r.Conn)
	}
	if r := read(store.RefreshAuto, nil); r.Refreshed {
		t.Fatal("auto refreshed a token good for an hour")
	}
	if r := read(store.RefreshForce, nil); !r.Refreshed || r.Conn.Credentials.AccessToken != "at_102" {
		t.Fatalf("force: %+v", r)
	}
	if got := fp.calls.Load(); got != 2 {
		t.Fatalf("provider calls %d, want 2", got)
	}

	// A provider without Refresh: force is refused, auto reads.
	b.advance(2 * time.Hour)
	none := store.ReadOptions{Policy: store.RefreshForce, Refresher: func(string) store.Refresher { return nil }}
	if _, err := b.st.ReadConnection(ctx, b.org, id, none); linkflow.ErrorCode(err) != linkflow.EUnprocessable {
		t.Fatalf("force without a refresher: %v", err)
	}
	none.Policy = store.RefreshAuto
	if r := read(store.RefreshAuto, &none); r.Refreshed {
		t.Fatal("auto refreshed without a refresher")
	}

	// Disabled: reads, never refreshes; force is a conflict.
	yes := true
	if _, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if r := read(store.RefreshAuto, nil); r.Refreshed || !r.Conn.Disabled {
		t.Fatalf("auto on a disabled, expired connection: %+v", r)
	}
	if _, err := b.st.ReadConnection(ctx, b.org, id, fp.options(store.RefreshForce)); linkflow.ErrorCode(err) != linkflow.EConflict {
		t.Fatalf("force on a disabled connection: %v", err)
	}
	if _, err := b.st.ReadConnection(ctx, b.org, "conn_nope", fp.options(store.RefreshAuto)); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("unknown connection: %v", err)
	}
}

func TestRefreshStatusAndEvents(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "bob", "", tokens(1, b.clock().Add(time.Hour)))
	fp := &fakeProvider{expires: b.clock().Add(time.Hour)}
	fp.fail.Store(true)

	r, err := b.st.ReadConnection(ctx, b.org, id, fp.options(store.RefreshForce))
	if err != nil {
		t.Fatal(err)
	}
	if r.RefreshErr == nil || r.Conn.Status != linkflow.ConnError || r.Conn.StatusMessage == "" || r.Event == nil ||
		r.Event.EventType != linkflow.EventConnectionError || r.Conn.Credentials.AccessToken != "at_1" {
		t.Fatalf("failed refresh: %+v %+v", r, r.Conn)
	}
	ev, err := b.st.Event(ctx, b.org, r.Event.StreamID)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Type string                  `json:"type"`
		Data linkflow.ConnectionView `json:"data"`
	}
	if err := json.Unmarshal(ev.Body, &body); err != nil || body.Type != linkflow.EventConnectionError ||
		body.Data.ID != id || body.Data.Status != linkflow.ConnError || !body.Data.Credentials.Redacted ||
		body.Data.Credentials.AccessToken != "" || ev.WebhookURL != "https://hooks.example.com/x" || ev.LinkID != "" {
		t.Fatalf("error event %+v: %s", ev, ev.Body)
	}
	// Failing again changes nothing worth an event.
	if r, err := b.st.ReadConnection(ctx, b.org, id, fp.options(store.RefreshForce)); err != nil || r.Event != nil || r.Conn.Status != linkflow.ConnError {
		t.Fatalf("second failure: %+v %v", r, err)
	}
	fp.fail.Store(false)
	r, err = b.st.ReadConnection(ctx, b.org, id, fp.options(store.RefreshForce))
	if err != nil || r.Conn.Status != linkflow.ConnHealthy || r.Conn.StatusMessage != "" || r.Event == nil ||
		r.Event.EventType != linkflow.EventConnectionHealthy {
		t.Fatalf("good refresh: %+v %v", r, err)
	}
	due, err := b.st.DueOutbox(ctx, b.org, -time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	var events int
	for _, e := range due {
		if e.Kind == "event" && e.EventID != "" {
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
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "carol", "", tokens(1, b.clock().Add(time.Hour)))
	lockKey := "lf:{" + b.org + "}:conn:" + id + ":lock"

	second := &fakeProvider{base: 100, expires: b.clock().Add(time.Hour)}
	first := &fakeProvider{expires: b.clock().Add(time.Hour)}
	var secondRead *store.ConnectionRead
	first.during = func() {
		// The lock expires; another read takes it and commits.
		if err := b.st.Redis().Del(ctx, lockKey).Err(); err != nil {
			t.Error(err)
		}
		opts := second.options(store.RefreshForce)
		var err error
		if secondRead, err = b.st.ReadConnection(ctx, b.org, id, opts); err != nil {
			t.Error(err)
		}
	}
	r, err := b.st.ReadConnection(ctx, b.org, id, first.options(store.RefreshForce))
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
	if n, _ := b.st.Redis().Exists(ctx, lockKey).Result(); n != 0 {
		t.Fatal("lock left behind")
	}
}

// A link that renews the connection while a refresh is in flight wins: its
// credentials are newer than the refresh's.
func TestRefreshSupersededByReconnect(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "dave", "", tokens(1, b.clock().Add(time.Hour)))
	fp := &fakeProvider{expires: b.clock().Add(time.Hour)}
	fp.during = func() {
		if again := b.connect(t, "tmobile", "dave", "", tokens(7, b.clock().Add(time.Hour))); again != id {
			t.Errorf("reconnect made %s, want %s", again, id)
		}
	}
	r, err := b.st.ReadConnection(ctx, b.org, id, fp.options(store.RefreshForce))
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
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "erin", "", tokens(1, b.clock().Add(time.Hour)))
	release := make(chan struct{})
	fp := &fakeProvider{expires: b.clock().Add(time.Hour), during: func() { <-release }}
	const n = 10
	var waiting atomic.Int64
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Go(func() {
			o := fp.options(store.RefreshForce)
			o.OnWait = func() { waiting.Add(1) }
			r, err := b.st.ReadConnection(ctx, b.org, id, o)
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

func TestListConnections(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		integration, user := "tmobile", fmt.Sprintf("u%d", i)
		if i%2 == 1 {
			integration = "att"
		}
		ids = append(ids, b.connect(t, integration, user, fmt.Sprintf("ext%d", i%2), tokens(i, b.clock().Add(time.Hour))))
	}
	var all []string
	cursor := ""
	for {
		page, next, err := b.st.ListConnections(ctx, b.org, linkflow.ConnectionFilter{}, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			all = append(all, c.ID)
			if c.Credentials == nil || c.Credentials.TokenType != "bearer" {
				t.Fatalf("listed credentials %+v", c.Credentials)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != 5 || all[0] != ids[4] || all[4] != ids[0] {
		t.Fatalf("listed %v, want newest first of %v", all, ids)
	}
	att, _, err := b.st.ListConnections(ctx, b.org, linkflow.ConnectionFilter{IntegrationID: "att", ExternalUserID: "ext1"}, "", 10)
	if err != nil || len(att) != 2 || att[0].ID != ids[3] || att[1].ID != ids[1] {
		t.Fatalf("filtered: %v %v", att, err)
	}
	if _, err := b.st.DeleteConnection(ctx, b.org, ids[2], nil); err != nil {
		t.Fatal(err)
	}
	revoked, _, err := b.st.ListConnections(ctx, b.org, linkflow.ConnectionFilter{Status: linkflow.ConnRevoked}, "", 10)
	if err != nil || len(revoked) != 1 || revoked[0].ID != ids[2] || revoked[0].Credentials != nil {
		t.Fatalf("revoked: %v %v", revoked, err)
	}
	if _, _, err := b.st.ListConnections(ctx, b.org, linkflow.ConnectionFilter{}, "link_x", 10); !errors.Is(err, linkflow.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestUpdateAndDeleteConnection(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "frank", "", tokens(1, b.clock().Add(time.Hour)))
	before, _ := b.st.Connection(ctx, b.org, id)
	name := "Frank's phone"
	c, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{Metadata: json.RawMessage(`{"plan":"gold"}`), DisplayName: &name})
	if err != nil || string(c.Metadata) != `{"plan":"gold"}` || c.DisplayName != name || c.Version != before.Version+1 {
		t.Fatalf("patched %+v %v", c, err)
	}
	if _, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{Metadata: json.RawMessage(`[1]`)}); err == nil {
		t.Fatal("metadata that is not an object was taken")
	}
	fp := &fakeProvider{}
	rev, err := b.st.DeleteConnection(ctx, b.org, id, func(string) store.Revoker { return fp })
	if err != nil || !rev.AtProvider || rev.Conn.Status != linkflow.ConnRevoked || rev.Conn.Credentials != nil || rev.Conn.RevokedAt.IsZero() {
		t.Fatalf("delete: %+v %v", rev, err)
	}
	if got := fp.revokedTokens(); len(got) != 1 || got[0] != "at_1" {
		t.Fatalf("revoked at the provider: %v", got)
	}
	if _, err := b.st.ConnectionCredentials(ctx, b.org, id); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("credentials outlived the delete: %v", err)
	}
	again, err := b.st.DeleteConnection(ctx, b.org, id, func(string) store.Revoker { return fp })
	if err != nil || !again.Already || len(fp.revokedTokens()) != 1 {
		t.Fatalf("second delete: %+v %v", again, err)
	}
	if _, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{DisplayName: &name}); !errors.Is(err, linkflow.ErrConnectionRevoked) {
		t.Fatalf("patching a tombstone: %v", err)
	}
	if _, err := b.st.ReadConnection(ctx, b.org, id, fp.options(store.RefreshForce)); linkflow.ErrorCode(err) != linkflow.EConflict {
		t.Fatalf("forcing a tombstone: %v", err)
	}

	// Secret reads: newest first, capped.
	for i := range 3 {
		if err := b.st.RecordSecretRead(ctx, b.org, id, linkflow.SecretRead{At: b.clock(), Subject: fmt.Sprintf("key:%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	reads, err := b.st.SecretReads(ctx, b.org, id, 2)
	if err != nil || len(reads) != 2 || reads[0].Subject != "key:2" {
		t.Fatalf("reads %+v %v", reads, err)
	}
	if _, err := b.st.SecretReads(ctx, b.org, "conn_nope", 2); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("reads of an unknown connection: %v", err)
	}
}

// A link that renews the connection while it is being deleted brought new
// credentials: the delete revokes those too before it keeps the tombstone.
func TestDeleteSupersededByReconnect(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "gina", "", tokens(1, b.clock().Add(time.Hour)))
	fp := &fakeProvider{}
	var once sync.Once
	rv := revokeHook{fp: fp, during: func() {
		once.Do(func() { b.connect(t, "tmobile", "gina", "", tokens(2, b.clock().Add(time.Hour))) })
	}}
	rev, err := b.st.DeleteConnection(ctx, b.org, id, func(string) store.Revoker { return rv })
	if err != nil || rev.Conn.Status != linkflow.ConnRevoked || rev.Conn.Credentials != nil || len(rev.Conn.LinkIDs) != 2 {
		t.Fatalf("delete: %+v %v", rev, err)
	}
	if got := fp.revokedTokens(); len(got) != 2 || got[0] != "at_1" || got[1] != "at_2" {
		t.Fatalf("revoked %v, want both links' tokens", got)
	}
}

type revokeHook struct {
	fp     *fakeProvider
	during func()
}

func (r revokeHook) Revoke(ctx context.Context, c linkflow.Credentials) error {
	err := r.fp.Revoke(ctx, c)
	r.during()
	return err
}
