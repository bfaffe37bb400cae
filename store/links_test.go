package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

type bundle struct {
	st    *store.Store
	clock *clock
	org   string
}

func setup(t *testing.T) *bundle { t.Helper(); return setupWith(t, nil) }

// setupWith is setup with mod applied to the store's configuration.
func setupWith(t *testing.T, mod func(*store.Config)) *bundle {
	t.Helper()
	rdb, renv := testenv.Redis(t)
	kr, err := store.ParseKeyring(store.GenerateKey("t"))
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	cfg := store.Config{Redis: rdb, Keyring: kr, Now: c.Now, Prefix: renv.Prefix, FullDuplex: true}
	if mod != nil {
		mod(&cfg)
	}
	st, err := store.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	org, err := st.CreateOrg(context.Background(), "", "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{st: st, clock: c, org: org.ID}
}

func (b *bundle) create(t *testing.T, mod func(*linkflow.NewLink)) *linkflow.Link {
	t.Helper()
	in := linkflow.NewLink{OrgID: b.org, IntegrationID: "tmobile", ExpiresIn: time.Hour,
		Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"},
			{Resource: "paymentMethod", Action: "write", Arguments: json.RawMessage(`{"cardNumber":"4111111111111111"}`)}}}
	if mod != nil {
		mod(&in)
	}
	c, err := b.st.CreateLink(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return c.Link
}

func TestCreateAndRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, nil)
	got, err := b.st.LinkWithCode(ctx, b.org, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != linkflow.StatusPending || got.ClaimCode != l.ClaimCode || len(got.Operations) != 2 {
		t.Fatalf("read back %+v", got)
	}
	// Read without its code (the steps that do not show it need no key).
	if plain, err := b.st.Link(ctx, b.org, l.ID); err != nil || plain.ClaimCode != "" || plain.Status != linkflow.StatusPending {
		t.Fatalf("read without the code: %+v %v", plain, err)
	}
	// Past its expiry (not swept yet) the code is shown no more: not opened.
	b.clock.Add(2 * time.Hour)
	if late, err := b.st.LinkWithCode(ctx, b.org, l.ID); err != nil || late.ClaimCode != "" {
		t.Fatalf("past its expiry: claim code %q (%v)", late.ClaimCode, err)
	}
	b.clock.Add(-2 * time.Hour)
	for _, op := range got.Operations {
		if op.Arguments != nil {
			t.Fatalf("arguments came back: %s", op.Arguments)
		}
	}
	if _, err := b.st.Link(ctx, "org_other", l.ID); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("another organization read the link: %v", err)
	}
	raw, _ := b.st.Redis().HGetAll(ctx, b.st.KeyLink(l.ID)).Result()
	for k, v := range raw {
		if json.Valid([]byte(v)) && (k == "args") {
			t.Fatalf("arguments stored in clear: %s", v)
		}
		if contains(v, "4111111111111111") || contains(v, l.ClaimCode) {
			t.Fatalf("field %s holds a secret in clear", k)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestIdempotentCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	mk := func(hash string) linkflow.NewLink {
		return linkflow.NewLink{OrgID: b.org, IntegrationID: "tmobile", ExpiresIn: time.Hour,
			Operations:     []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}},
			IdempotencyKey: "key-1", RequestHash: hash,
			Response: func(l *linkflow.Link) ([]byte, error) {
				return json.Marshal(map[string]string{"linkId": l.ID, "claimCode": "clm_response-marker"})
			}}
	}
	// Concurrent duplicates: exactly one link, every response the same.
	var wg sync.WaitGroup
	responses := make([]string, 8)
	for i := range responses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := b.st.CreateLink(ctx, mk("h1"))
			if err != nil {
				t.Error(err)
				return
			}
			responses[i] = string(c.Response)
		}()
	}
	wg.Wait()
	for _, r := range responses[1:] {
		if r != responses[0] {
			t.Fatalf("duplicates answered differently: %s vs %s", r, responses[0])
		}
	}
	n, _ := b.st.IndexedLinks(ctx, b.org)
	if n != 1 {
		t.Fatalf("%d links created for one idempotency key", n)
	}
	_, err := b.st.CreateLink(ctx, mk("h2"))
	if !errors.Is(err, linkflow.ErrIdempotencyConflict) {
		t.Fatalf("same key, other body: %v", err)
	}
	// The record keeps the response (and its claim code) sealed.
	if !strings.Contains(responses[0], "clm_response-marker") {
		t.Fatalf("replayed response %s", responses[0])
	}
	for k, text := range testenv.RedisContents(ctx, t, b.st.Redis(), "*") {
		if strings.Contains(text, "clm_response-marker") {
			t.Fatalf("Redis key %s holds the response as it was: %s", k, text)
		}
	}
	// A record an earlier release stored as it was is replayed as it is.
	legacy := mk("h3")
	legacy.IdempotencyKey = "key-legacy"
	if err := b.st.Redis().HSet(ctx, b.st.KeyIdempotency(b.org, "key-legacy"), "hash", "h3", "response", `{"legacy":true}`).Err(); err != nil {
		t.Fatal(err)
	}
	if c, err := b.st.CreateLink(ctx, legacy); err != nil || !c.Replayed || string(c.Response) != `{"legacy":true}` {
		t.Fatalf("a record of an earlier release: %+v %v", c, err)
	}
}

func TestClaimRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	l := b.create(t, nil)
	if _, err := b.st.ClaimLink(ctx, l.ID, "clm_wrong", "u", "p"); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := b.st.ClaimLink(ctx, "link_nope", l.ClaimCode, "u", "p"); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("unknown link: %v", err)
	}
	c, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "pass_good")
	if err != nil || c.OrgID != b.org || c.IntegrationID != "tmobile" {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "pass_good"); !isState(err, linkflow.StatusClaimed) {
		t.Fatalf("second claim: %v", err)
	}

	req := b.create(t, func(n *linkflow.NewLink) { n.RequiredUsername = "alice" })
	if _, err := b.st.ClaimLink(ctx, req.ID, req.ClaimCode, "bob", "p"); !errors.Is(err, linkflow.ErrUsernameMismatch) {
		t.Fatalf("username mismatch: %v", err)
	}

	exp := b.create(t, func(n *linkflow.NewLink) { n.ExpiresIn = time.Minute })
	b.clock.Add(2 * time.Minute)
	_, err = b.st.ClaimLink(ctx, exp.ID, exp.ClaimCode, "u", "p")
	if !isState(err, linkflow.StatusExpired) {
		t.Fatalf("expired claim: %v", err)
	}
}

func TestClaimGuessLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, nil)
	for range 10 {
		if _, err := b.st.ClaimLink(ctx, l.ID, "clm_guess", "u", "p"); !errors.Is(err, linkflow.ErrNotFound) {
			t.Fatalf("guess: %v", err)
		}
	}
	_, err := b.st.ClaimLink(ctx, l.ID, "clm_guess", "u", "p")
	var le *linkflow.LockedError
	if !errors.As(err, &le) || le.RetryAfter <= 0 {
		t.Fatalf("the 11th wrong guess must be refused with a retry time: %v", err)
	}
	// Guessing cannot lock the real end user out.
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "u", "p"); err != nil {
		t.Fatalf("the right code after the guesses: %v", err)
	}
}

func TestRunFencing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, nil)
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "pass_good"); err != nil {
		t.Fatal(err)
	}
	r1, err := b.st.BeginRun(ctx, b.org, l.ID, "tok1", time.Minute)
	if err != nil || r1.Verdict != linkflow.RunStart || r1.Password != "pass_good" || len(r1.Arguments) != 2 {
		t.Fatalf("begin: %+v %v", r1, err)
	}
	if r, _ := b.st.BeginRun(ctx, b.org, l.ID, "tok2", time.Minute); r.Verdict != linkflow.RunBusy {
		t.Fatalf("second worker while the lease is held: %s", r.Verdict)
	}
	// The first worker stalls past its lease (its key expires: deleted
	// here, since Redis's TTL runs on real time, which a slow step of the
	// test could outrun); a second takes over.
	if err := b.st.Redis().Del(ctx, b.st.KeyLinkLease(l.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if r, err := b.st.BeginRun(ctx, b.org, l.ID, "tok2", time.Minute); err != nil || r.Verdict != linkflow.RunStart {
		t.Fatalf("second worker once the lease expired: %+v %v", r, err)
	}
	r1.Link.Status = linkflow.StatusSucceeded
	r1.Link.CompletedAt = b.clock.Now()
	r1.Link.Result = json.RawMessage(`{"x":1}`)
	// The stale commit carries a connection write: fenced, it writes none
	// (on a single Redis the write rides in the commit's round trip, and a
	// connection this link wrote once is not written again).
	if _, err := b.st.FinishRun(ctx, r1.Link, "tok1", &linkflow.ConnectionWrite{IntegrationID: "tmobile", Username: "user_good",
		Credentials: &linkflow.Credentials{AccessToken: "at_stale"}}); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("stale worker's commit: %v", err)
	}
	fin, err := b.st.FinishRun(ctx, r1.Link, "tok2", &linkflow.ConnectionWrite{IntegrationID: "tmobile", Username: "user_good",
		Credentials: &linkflow.Credentials{AccessToken: "at_secret"}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := b.st.Link(ctx, b.org, l.ID)
	if got.Status != linkflow.StatusSucceeded || got.ConnectionID != fin.ConnectionID || string(got.Result) != `{"x":1}` {
		t.Fatalf("after commit: %+v", got)
	}
	evs, err := b.st.EventRecords(ctx, []string{fin.EventID})
	if ev := evs[fin.EventID]; err != nil || ev.Type != linkflow.EventLinkSucceeded || ev.LinkID != l.ID ||
		fin.Event.ID != fin.EventID || fin.Event.Outbox == "" {
		t.Fatalf("event: %+v %+v %v", evs, fin, err)
	}
	conn, err := b.st.Connection(ctx, b.org, fin.ConnectionID)
	if err != nil || conn.Credentials.AccessToken != "at_secret" || conn.LastLinkID != l.ID {
		t.Fatalf("connection after the commit: %+v %v", conn, err)
	}
	if r, _ := b.st.BeginRun(ctx, b.org, l.ID, "tok3", time.Minute); r.Verdict != linkflow.RunDone {
		t.Fatalf("redelivery after the end: %s", r.Verdict)
	}
	if n, err := b.st.Redis().Exists(ctx, b.st.KeyLinkPassword(l.ID)).Result(); err != nil || n != 0 {
		t.Fatalf("the password outlived the link: %d (%v)", n, err)
	}
}

func TestListForgetsLinksPastRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	kept, gone := b.create(t, nil), b.create(t, nil)
	// Retention expired the second link's hash; its index entry remains.
	if err := b.st.Redis().Del(ctx, b.st.KeyLink(gone.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	links, _, err := b.st.ListLinks(ctx, b.org, linkflow.LinkFilter{}, "", 10)
	if err != nil || len(links) != 1 || links[0].ID != kept.ID {
		t.Fatalf("list: %v %v", links, err)
	}
	testenv.Eventually(t, 5*time.Second, "the index to forget the expired link", func() bool {
		n, _ := b.st.IndexedLinks(ctx, b.org)
		return n == 1
	})
}

// A link's index entries go when its retention ends: a finished link's at
// completion + retention, an open one's only past its latest possible end.
func TestLinkIndexesPrunedAfterRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	user := func(in *linkflow.NewLink) { in.ExternalUserID = "u1" }
	b.create(t, user) // stays open
	done := b.create(t, user)
	if _, err := b.st.CancelLink(ctx, b.org, done.ID); err != nil {
		t.Fatal(err)
	}
	count := func(f linkflow.LinkFilter) int {
		t.Helper()
		// The index as a listing sees it, without its own clean-up: the
		// link hashes are still there.
		links, _, err := b.st.ListLinks(ctx, b.org, f, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(links)
	}
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || sw.Pruned != 0 {
		t.Fatalf("prune before any retention ended: %+v, %v", sw, err)
	}
	b.clock.Add(30*24*time.Hour + time.Minute) // the default retention, from the cancel
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || sw.Pruned != 1 || len(sw.Expired) != 1 {
		t.Fatalf("prune after the finished link's retention (and expire the open one): %+v, %v", sw, err)
	}
	if n, _ := b.st.IndexedLinks(ctx, b.org); n != 1 {
		t.Fatalf("indexed links %d, want the open one", n)
	}
	for _, f := range []linkflow.LinkFilter{{}, {IntegrationID: "tmobile"}, {ExternalUserID: "u1"}} {
		if n := count(f); n != 1 {
			t.Fatalf("%+v lists %d links, want the open one", f, n)
		}
	}
	// The open link's entries stay for the retention after it ended (that
	// sweep expired it).
	b.clock.Add(30*24*time.Hour - time.Minute)
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || sw.Pruned != 0 {
		t.Fatalf("prune before the expired link's retention ended: %+v, %v", sw, err)
	}
	b.clock.Add(2 * time.Minute)
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || sw.Pruned != 1 {
		t.Fatalf("prune after the open link's latest end: %+v, %v", sw, err)
	}
	if n, err := b.st.IndexedLinks(ctx, b.org); err != nil || n != 0 {
		t.Fatalf("indexed links %d, want none (%v)", n, err)
	}
}

// An API key is never kept in clear, not even in part; keys shorter than 16
// characters are refused.
func TestAPIKeysKeptHashed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, _, err := b.st.CreateAPIKey(ctx, b.org, "short", "devkey", nil); err == nil {
		t.Fatal("a 6-character key was accepted")
	}
	const chosen = "a-chosen-dev-key-0123"
	if _, _, err := b.st.CreateAPIKey(ctx, b.org, "chosen", chosen, nil); err != nil {
		t.Fatal(err)
	}
	generated, rec, err := b.st.CreateAPIKey(ctx, b.org, "generated", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// No key, and no 8-character piece of one, anywhere in Redis: in any
	// key's name or value, of any type, on any master.
	for k, dump := range testenv.RedisContents(ctx, t, b.st.Redis(), "*") {
		for _, secret := range []string{chosen, generated} {
			for i := 0; i+8 <= len(secret); i++ {
				if strings.Contains(dump, secret[i:i+8]) {
					t.Fatalf("Redis key %s holds %q of an API key", k, secret[i:i+8])
				}
			}
		}
	}
	if p, _, err := b.st.Authenticate(ctx, generated, nil); err != nil || p.KeyID != rec.ID {
		t.Fatalf("authenticate: %+v, %v", p, err)
	}
}

// isState reports whether err is a link status refusing an action.
func isState(err error, want linkflow.Status) bool {
	var se *linkflow.StateError
	return errors.As(err, &se) && se.Status == want
}

// A Redis that lost its script cache (a restart, a failover) still runs the
// scripts queued in pipelines: creation, heartbeats, rate limits.
func TestPipelinedScriptsAfterScriptFlush(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, nil) // the scripts are cached now
	if err := b.st.Redis().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	again := b.create(t, nil)
	if again.ID == l.ID {
		t.Fatal("the same link twice")
	}
	got, err := b.st.Link(ctx, b.org, again.ID)
	if err != nil || got.Status != linkflow.StatusPending {
		t.Fatalf("link created after SCRIPT FLUSH: %+v %v", got, err)
	}
	if n, _ := b.st.IndexedLinks(ctx, b.org); n != 2 {
		t.Fatalf("indexed links %d, want 2", n)
	}
	if err := b.st.Redis().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	states, err := b.st.Heartbeat(ctx, []linkflow.LeaseRef{{OrgID: b.org, LinkID: l.ID, Token: "nobody"}}, nil, time.Minute)
	if err != nil || len(states) != 1 || !states[0].Lost {
		t.Fatalf("heartbeat after SCRIPT FLUSH: %+v %v", states, err)
	}
}

// A pending link that cannot be read (corrupt, or sealed with a key that is
// gone) does not stop expiry: it leaves the schedule, reported once, and the
// links due after it expire.
func TestSweepSkipsAnUnreadableLink(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	bad := b.create(t, nil)
	if err := b.st.Redis().HSet(ctx, b.st.KeyLink(bad.ID), "ops", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(time.Minute) // due after the corrupt one, in whatever shard
	var good []string
	for range 40 {
		good = append(good, b.create(t, nil).ID)
	}
	b.clock.Add(2 * time.Hour)
	sw, err := b.st.SweepLinks(ctx, 100)
	if err != nil || len(sw.Expired) != len(good) || len(sw.Unreadable) != 1 || sw.Unreadable[bad.ID] == nil {
		t.Fatalf("sweep: %+v, %v", sw, err)
	}
	if sw, err := b.st.SweepLinks(ctx, 100); err != nil || len(sw.Expired) != 0 || len(sw.Unreadable) != 0 {
		t.Fatalf("second sweep: %+v, %v", sw, err)
	}
}

// A link hash without the fields an earlier release may not have written
// (version, expiresAt) is claimed, or found expired: never a script error.
func TestClaimToleratesMissingFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, nil)
	if err := b.st.Redis().HDel(ctx, b.st.KeyLink(l.ID), "version").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "pass_good"); err != nil {
		t.Fatalf("claim without a version: %v", err)
	}
	l = b.create(t, nil)
	if err := b.st.Redis().HDel(ctx, b.st.KeyLink(l.ID), "expiresAt").Err(); err != nil {
		t.Fatal(err)
	}
	var se *linkflow.StateError
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "pass_good"); err == nil ||
		(!errors.As(err, &se) && !errors.Is(err, linkflow.ErrNotFound)) || strings.Contains(err.Error(), "script") {
		t.Fatalf("claim without an expiry: %v", err)
	}
}

// running creates, claims and begins a link for username under the lease
// token.
func (b *bundle) running(t *testing.T, username, token string) *linkflow.Link {
	t.Helper()
	ctx := context.Background()
	l := b.create(t, nil)
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, username, "pass_good"); err != nil {
		t.Fatal(err)
	}
	if r, err := b.st.BeginRun(ctx, b.org, l.ID, token, time.Minute); err != nil || r.Verdict != linkflow.RunStart {
		t.Fatalf("begin: %+v %v", r, err)
	}
	return l
}

// ask has the session under token show the running link id the challenge
// chl_1 (an OTP, expiring in a minute) with left attempts, and returns it.
func (b *bundle) ask(t *testing.T, id, token string, left int) *linkflow.Challenge {
	t.Helper()
	ch := &linkflow.Challenge{ID: "chl_1", Type: "otp", Message: "Code?", ExpiresAt: b.clock.Now().Add(time.Minute), AttemptsLeft: left}
	if err := b.st.SetChallenge(context.Background(), b.org, id, token, ch, ""); err != nil {
		t.Fatal(err)
	}
	return ch
}

// The session's last read at a challenge's expiry closes it: an answer the
// API stores after that read (its clock behind the worker's, or its request
// slower than the read) is refused as expired, not accepted and dropped. A
// read without the lease closes nothing; the same challenge asked again
// takes answers again.
func TestLastReadClosesTheChallenge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.running(t, "fay", "tok")
	b.ask(t, l.ID, "tok", 3)
	if _, _, err := b.st.TakeInput(ctx, l.ID, "tok-lost", "chl_1"); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("a closing read without the lease: %v", err)
	}
	if id, _, err := b.st.TakeInput(ctx, l.ID, "tok", ""); err != nil || id != "" {
		t.Fatalf("a read: %q %v", id, err)
	}
	if id, _, err := b.st.TakeInput(ctx, l.ID, "tok", "chl_1"); err != nil || id != "" {
		t.Fatalf("the last read: %q %v", id, err)
	}
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "123456"); !errors.Is(err, linkflow.ErrChallengeExpired) {
		t.Fatalf("an answer after the last read, within the challenge's expiry: %v, want expired", err)
	}
	b.ask(t, l.ID, "tok", 2)
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "654321"); err != nil {
		t.Fatalf("an answer once asked again: %v", err)
	}
	if id, resp, err := b.st.TakeInput(ctx, l.ID, "tok", "chl_1"); err != nil || id != "chl_1" || resp != "654321" {
		t.Fatalf("the last read takes an answer that came in time: %q %q %v", id, resp, err)
	}
	// Sent again (its 202 lost), that answer is being checked: not expired.
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "654321"); !errors.Is(err, linkflow.ErrAlreadyAnswered) {
		t.Fatalf("the answer sent again after the last read took it: %v, want already answered", err)
	}
}

// Only the holder of a link's lease takes the answer to its challenge: a
// worker that lost the lease and has not noticed yet would take the answer
// meant for the new holder's challenge and throw it away.
func TestTakeInputIsFencedByTheLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.running(t, "erin", "tok-holder")
	b.ask(t, l.ID, "tok-holder", 3)
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "123456"); err != nil {
		t.Fatal(err)
	}
	if id, resp, err := b.st.TakeInput(ctx, l.ID, "tok-lost", ""); !errors.Is(err, linkflow.ErrFenced) || id != "" || resp != "" {
		t.Fatalf("taken without the lease: %q %q %v", id, resp, err)
	}
	if id, resp, err := b.st.TakeInput(ctx, l.ID, "tok-holder", ""); err != nil || id != "chl_1" || resp != "123456" {
		t.Fatalf("the holder takes: %q %q %v", id, resp, err)
	}
	// A read whose reply was lost is read again: the answer stays until
	// the worker asks again or moves on.
	if id, resp, err := b.st.TakeInput(ctx, l.ID, "tok-holder", ""); err != nil || id != "chl_1" || resp != "123456" {
		t.Fatalf("read again: %q %q %v", id, resp, err)
	}
	none := func(token, after string) {
		t.Helper()
		if id, _, err := b.st.TakeInput(ctx, l.ID, token, ""); err != nil || id != "" {
			t.Fatalf("the answer outlived %s: %q %v", after, id, err)
		}
	}
	answer := func() {
		t.Helper()
		if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "123456"); err != nil {
			t.Fatal(err)
		}
	}
	b.ask(t, l.ID, "tok-holder", 3)
	none("tok-holder", "its asking")
	answer()
	if err := b.st.SetChallenge(ctx, b.org, l.ID, "tok-holder", nil, ""); err != nil {
		t.Fatal(err)
	}
	none("tok-holder", "the login")
	b.ask(t, l.ID, "tok-holder", 3)
	answer()
	if err := b.st.ReleaseRun(ctx, b.org, l.ID, "tok-holder", "", true); err != nil {
		t.Fatal(err)
	}
	if r, err := b.st.BeginRun(ctx, b.org, l.ID, "tok-next", time.Minute); err != nil || r.Verdict != linkflow.RunStart {
		t.Fatalf("begin again: %+v %v", r, err)
	}
	none("tok-next", "its attempt")
}

// An answer past its challenge's expiry is refused: the session stopped
// waiting for it (and fails the link), so an accepted answer would be lost.
func TestSubmitInputRefusedPastTheChallengesExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.running(t, "erin", "tok")
	ch := b.ask(t, l.ID, "tok", 3)
	// An answer in time outlives the challenge's expiry a while: the
	// session reads it once more then.
	b.clock.Add(time.Minute - time.Second)
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "123456"); err != nil {
		t.Fatal(err)
	}
	if ttl, err := b.st.Redis().PTTL(ctx, b.st.KeyLinkInput(l.ID)).Result(); err != nil || ttl < 30*time.Second {
		t.Fatalf("an answer a second before the expiry is kept %v (%v)", ttl, err)
	}
	if err := b.st.SetChallenge(ctx, b.org, l.ID, "tok", ch, ""); err != nil { // asked again
		t.Fatal(err)
	}
	b.clock.Add(time.Second)
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "123456"); !errors.Is(err, linkflow.ErrChallengeExpired) {
		t.Fatalf("an answer at the expiry: %v", err)
	}
	if id, _, err := b.st.TakeInput(ctx, l.ID, "tok", ""); err != nil || id != "" {
		t.Fatalf("an answer was kept: %q %v", id, err)
	}
}

// A challenge takes one answer until the worker asks again: a second one,
// while the first waits or is being checked, would be dropped, so it is
// refused. Asked again (a wrong code), it is answered again.
func TestSubmitInputOncePerAsking(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.running(t, "frank", "tok")
	ask := func(left int) { t.Helper(); b.ask(t, l.ID, "tok", left) }
	ask(3)
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "111111"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "222222"); !errors.Is(err, linkflow.ErrAlreadyAnswered) {
		t.Fatalf("a second answer while the first waits: %v", err)
	}
	if id, resp, err := b.st.TakeInput(ctx, l.ID, "tok", ""); err != nil || id != "chl_1" || resp != "111111" {
		t.Fatalf("taken: %q %q %v, want the first answer", id, resp, err)
	}
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "333333"); !errors.Is(err, linkflow.ErrAlreadyAnswered) {
		t.Fatalf("an answer while the first is checked: %v", err)
	}
	ask(2) // the code was wrong: asked again
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_1", "444444"); err != nil {
		t.Fatalf("answer after being asked again: %v", err)
	}
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "chl_other", "555555"); !errors.Is(err, linkflow.ErrWrongChallenge) {
		t.Fatalf("another challenge's answer: %v", err)
	}
}

// A lease that lapsed while Redis did not answer is taken back by the
// heartbeat of the session that held it, as long as no other session began
// and the link did not end; never once another began, after a release, or
// after the link was failed.
func TestLapsedLeaseTakenBackOnlyByItsHolder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rdb := b.st.Redis()
	beat := func(id, token string) bool {
		t.Helper()
		states, err := b.st.Heartbeat(ctx, []linkflow.LeaseRef{{OrgID: b.org, LinkID: id, Token: token}}, nil, time.Minute)
		if err != nil || len(states) != 1 {
			t.Fatalf("heartbeat: %+v %v", states, err)
		}
		return !states[0].Lost
	}
	lapse := func(id string) {
		t.Helper()
		if err := rdb.Del(ctx, b.st.KeyLinkLease(id)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	l := b.running(t, "hana", "tok-a")
	before, _ := b.st.Link(ctx, b.org, l.ID)
	lapse(l.ID)
	if !beat(l.ID, "tok-a") {
		t.Fatal("a lapsed lease nobody took was not taken back")
	}
	if got, err := rdb.Get(ctx, b.st.KeyLinkLease(l.ID)).Result(); err != nil || got != "tok-a" {
		t.Fatalf("lease after taking it back: %q %v", got, err)
	}
	if after, _ := b.st.Link(ctx, b.org, l.ID); after.Version <= before.Version {
		t.Fatalf("taking the lease back kept version %d", after.Version)
	}
	if beat(l.ID, "tok-other") {
		t.Fatal("another token renewed the lease")
	}
	lapse(l.ID)
	if r, err := b.st.BeginRun(ctx, b.org, l.ID, "tok-b", time.Minute); err != nil || r.Verdict != linkflow.RunStart {
		t.Fatalf("begin again: %+v %v", r, err)
	}
	if beat(l.ID, "tok-a") {
		t.Fatal("the lease was taken back from the session that began after it lapsed")
	}
	if err := b.st.ReleaseRun(ctx, b.org, l.ID, "tok-b", "", false); err != nil {
		t.Fatal(err)
	}
	if beat(l.ID, "tok-b") {
		t.Fatal("a released lease was taken back")
	}
	failed := b.running(t, "ivan", "tok-c")
	lapse(failed.ID)
	if fin, err := b.st.FailLink(ctx, b.org, failed.ID, linkflow.LinkError{Code: linkflow.FailureAttemptsExhausted, Message: "x"}); err != nil || fin == nil {
		t.Fatalf("fail: %+v %v", fin, err)
	}
	if beat(failed.ID, "tok-c") {
		t.Fatal("the lease of a failed link was taken back")
	}
}

// A dead-lettered link is failed only when no session holds it: a session
// that does ends it itself (failing it under the session would fence its
// commit and orphan its provider writes).
func TestFailLinkLeavesAHeldLink(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.running(t, "gina", "tok")
	le := linkflow.LinkError{Code: linkflow.FailureAttemptsExhausted, Message: "dead-lettered"}
	if fin, err := b.st.FailLink(ctx, b.org, l.ID, le); !errors.Is(err, linkflow.ErrLeaseHeld) || fin != nil {
		t.Fatalf("fail under a held lease: %+v %v", fin, err)
	}
	if err := b.st.ReleaseRun(ctx, b.org, l.ID, "tok", "", false); err != nil {
		t.Fatal(err)
	}
	if fin, err := b.st.FailLink(ctx, b.org, l.ID, le); err != nil || fin == nil {
		t.Fatalf("fail once released: %+v %v", fin, err)
	}
	if got, _ := b.st.Link(ctx, b.org, l.ID); got.Status != linkflow.StatusFailed {
		t.Fatalf("link %s", got.Status)
	}
}

// onEachClientKind runs f, in parallel subtests, on a store of each of the
// store's ways to talk to Redis: the full-duplex auto-pipeliner the
// processes use, the plain one, and none.
func onEachClientKind(t *testing.T, f func(t *testing.T, b *bundle)) {
	for name, mod := range map[string]func(*store.Config){
		"full duplex":      nil,
		"auto-pipeliner":   func(c *store.Config) { c.FullDuplex = false },
		"no auto-pipeline": func(c *store.Config) { c.NoAutoPipeline = true },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, setupWith(t, mod))
		})
	}
}

// A read of an API key that Redis answers with an error is that error, not
// "no such key": a Redis in trouble (a master of the Cluster down, a timeout)
// must answer 503, not 401, and must not count as a wrong key against the
// caller's address. The read fails here for real: its key holds a string.
// The auto-pipeliner (the store's default, and the full-duplex one the
// processes use) answers each command on its own, where a pipeline judged
// every command of its own.
func TestAuthenticateReadErrorIsNotAnUnknownKey(t *testing.T) {
	t.Parallel()
	onEachClientKind(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		secret, _, err := b.st.CreateAPIKey(ctx, b.org, "k", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.st.Redis().Set(ctx, b.st.KeyAPIKey(secret), "not a hash", 0).Err(); err != nil {
			t.Fatal(err)
		}
		for _, gate := range []*linkflow.RateLimitRequest{nil, {Name: "auth:test", Rate: 1, Burst: 10, Mode: linkflow.RateLimitPeek}} {
			p, _, err := b.st.Authenticate(ctx, secret, gate)
			if err == nil || errors.Is(err, linkflow.ErrNotFound) || !strings.Contains(err.Error(), "WRONGTYPE") {
				t.Fatalf("gate %v: a failed read answered %+v, %v; want its WRONGTYPE error", gate != nil, p, err)
			}
		}
	})
}

// The outbox's confirmations report a delete Redis refused (the entry then
// stays for the relay), on every kind of client.
func TestAckOutboxReportsAFailedDelete(t *testing.T) {
	t.Parallel()
	onEachClientKind(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		l := b.create(t, nil)
		fin, err := b.st.FailLink(ctx, b.org, l.ID, linkflow.LinkError{Code: linkflow.FailureDeclined, Message: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.st.Redis().Set(ctx, b.st.KeyOutboxMessages(fin.Event.Outbox), "not a hash", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.st.AckOutbox(ctx, fin.Event); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Fatalf("AckOutbox with a delete refused: %v, want its WRONGTYPE error", err)
		}
	})
}

// A refused password is recorded with its credentials challenge and handed
// to the next attempt, the password itself emptied; the write sent again (its reply lost) moves the
// challenge's expiry on and keeps an answer that came meanwhile; a password
// that works drops the count.
func TestAskPasswordCountsRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.running(t, "gina", "tok")
	ch := &linkflow.Challenge{ID: "cred_1", Type: linkflow.ChallengeCredentials, Message: "Again.",
		ExpiresAt: b.clock.Now().Add(time.Minute), AttemptsLeft: 2}
	if err := b.st.AskPassword(ctx, b.org, l.ID, "tok-lost", ch, 1); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("without the lease: %v", err)
	}
	if err := b.st.AskPassword(ctx, b.org, l.ID, "tok", ch, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.SubmitInput(ctx, l.ID, l.ClaimCode, "cred_1", "typed"); err != nil {
		t.Fatal(err)
	}
	ch.ExpiresAt = ch.ExpiresAt.Add(time.Minute)
	if err := b.st.AskPassword(ctx, b.org, l.ID, "tok", ch, 1); err != nil { // sent again, later
		t.Fatal(err)
	}
	if id, resp, err := b.st.TakeInput(ctx, l.ID, "tok", ""); err != nil || id != "cred_1" || resp != "typed" {
		t.Fatalf("the answer after the write sent again: %q %q %v", id, resp, err)
	}
	if got, err := b.st.Link(ctx, b.org, l.ID); err != nil || !got.Challenge.ExpiresAt.Equal(ch.ExpiresAt) {
		t.Fatalf("the challenge after the write sent again: %+v %v", got.Challenge, err)
	}
	// next hands the attempt under from back and begins one under to.
	next := func(from, to string) *linkflow.Run {
		t.Helper()
		if err := b.st.ReleaseRun(ctx, b.org, l.ID, from, "", true); err != nil {
			t.Fatal(err)
		}
		r, err := b.st.BeginRun(ctx, b.org, l.ID, to, time.Minute)
		if err != nil || r.Verdict != linkflow.RunStart {
			t.Fatalf("begin: %+v %v", r, err)
		}
		return r
	}
	if r := next("tok", "tok2"); r.PasswordsRefused != 1 || r.Password != "" {
		t.Fatalf("the next attempt: %d refused, password %q", r.PasswordsRefused, r.Password)
	}
	if err := b.st.SetChallenge(ctx, b.org, l.ID, "tok2", nil, "typed"); err != nil { // it worked
		t.Fatal(err)
	}
	if r := next("tok2", "tok3"); r.PasswordsRefused != 0 || r.Password != "typed" {
		t.Fatalf("after a password that worked: %d refused, password %q", r.PasswordsRefused, r.Password)
	}
}

// A full Redis (maxmemory reached under noeviction) refuses a session's
// start whole (the worker hands the message back): no attempt is counted
// and no lease taken, though the start would first drop the claim's outbox
// entry (a delete, which a full Redis allows, and after which it would let
// every write through). Once Redis has room the attempt starts as the
// first.
func TestBeginRunRefusedWholeByAFullRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, own, l := claimedOnOwnRedis(t)
	if n, err := own.ZCard(ctx, b.st.KeyOutboxOf(l.ID)).Result(); err != nil || n != 1 {
		t.Fatalf("the claim's outbox entry: %d, %v", n, err)
	}
	setMaxmemory(t, own, "1")
	_, err := b.st.BeginRun(ctx, b.org, l.ID, "tok", time.Minute)
	setMaxmemory(t, own, "0")
	if err == nil || !strings.Contains(err.Error(), "OOM ") {
		t.Fatalf("begin on a full Redis: %v, want Redis's OOM refusal", err)
	}
	got, err := b.st.Link(ctx, b.org, l.ID)
	if err != nil || got.Status != linkflow.StatusClaimed || got.Attempts != 0 {
		t.Fatalf("after the refused start: %+v, %v", got, err)
	}
	if n, err := own.ZCard(ctx, b.st.KeyOutboxOf(l.ID)).Result(); err != nil || n != 1 {
		t.Fatalf("the claim's outbox entry after the refused start: %d, %v", n, err)
	}
	r, err := b.st.BeginRun(ctx, b.org, l.ID, "tok", time.Minute)
	if err != nil || r.Verdict != linkflow.RunStart || r.Link.Attempts != 1 {
		t.Fatalf("begin once Redis has room: %+v, %v", r, err)
	}
}

// A full Redis does not stop the relay: the round reads what waits in the
// outbox though Redis refuses its push-back (which only spreads concurrent
// relays), and the confirmation, which frees memory, removes it.
func TestDueOutboxOnAFullRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, own, l := claimedOnOwnRedis(t)
	setMaxmemory(t, own, "1")
	if err := own.ZAddXX(ctx, b.st.KeyOutboxOf(l.ID), redis.Z{Score: 1, Member: "x"}).Err(); err == nil ||
		!strings.Contains(err.Error(), "OOM ") {
		t.Fatalf("a write to the full Redis: %v, want refused", err)
	}
	due, err := b.st.DueOutbox(ctx, -time.Hour, 100)
	if err != nil || len(due) != 1 || due[0].ID != outbox.ClaimedID(l.ID) {
		t.Fatalf("a relay round on a full Redis: %+v, %v", due, err)
	}
	if err := b.st.AckOutbox(ctx, due...); err != nil {
		t.Fatal(err)
	}
	if n, err := own.ZCard(ctx, b.st.KeyOutboxOf(l.ID)).Result(); err != nil || n != 0 {
		t.Fatalf("the outbox after the confirmation: %d, %v", n, err)
	}
}

// claimedOnOwnRedis is a bundle on a redis-server of the test's own (whose
// settings it may change) and a link claimed there: the claim's message
// waits in the outbox.
func claimedOnOwnRedis(t *testing.T) (*bundle, *redis.Client, *linkflow.Link) {
	t.Helper()
	own, _ := testenv.RedisSingle(t)
	b := setupWith(t, func(c *store.Config) { c.Redis, c.Prefix = own, "" })
	l := b.create(t, nil)
	if _, err := b.st.ClaimLink(context.Background(), l.ID, l.ClaimCode, "user_good", "pass_good"); err != nil {
		t.Fatal(err)
	}
	return b, own, l
}

// setMaxmemory sets a Redis's maxmemory ("1": full at once, under
// noeviction; "0": no limit).
func setMaxmemory(t *testing.T, rdb *redis.Client, v string) {
	t.Helper()
	if err := rdb.ConfigSet(context.Background(), "maxmemory", v).Err(); err != nil {
		t.Fatal(err)
	}
}
