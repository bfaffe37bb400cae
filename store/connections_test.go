package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// connBundle is a store on real Redis with a clock the test moves.
type connBundle struct {
	st    *store.Store
	now   atomic.Int64 // unix ms
	org   string
	links atomic.Int64
	// linkIDs are the links connect ran, in order.
	linkIDs []string
}

func newConnBundle(t *testing.T) *connBundle {
	t.Helper()
	rdb, renv := testenv.Redis(t)
	kr, err := store.ParseKeyring(store.GenerateKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	b := &connBundle{}
	b.now.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixMilli())
	if b.st, err = store.New(store.Config{Redis: rdb, Keyring: kr, Now: b.clock, Prefix: renv.Prefix}); err != nil {
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

// connectFin is connect for a link without an external user id, returning
// what its commit answered.
func (b *connBundle) connectFin(t *testing.T, integration, username string, creds *linkflow.Credentials) *linkflow.Finished {
	t.Helper()
	return b.run(t, integration, username, "", creds)
}

// connect runs a link for username to success through the store's own
// steps (create, claim, begin, finish) and returns the connection id.
func (b *connBundle) connect(t *testing.T, integration, username, externalUser string, creds *linkflow.Credentials) string {
	t.Helper()
	return b.run(t, integration, username, externalUser, creds).ConnectionID
}

func (b *connBundle) run(t *testing.T, integration, username, externalUser string, creds *linkflow.Credentials) *linkflow.Finished {
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
	b.linkIDs = append(b.linkIDs, c.Link.ID)
	return fin
}

func tokens(n int, expires time.Time) *linkflow.Credentials {
	return &linkflow.Credentials{AccessToken: fmt.Sprintf("at_%d", n), RefreshToken: fmt.Sprintf("rt_%d", n),
		TokenType: "bearer", ExpiresAt: expires}
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
	b.revoke(t, ids[2])
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
	b.revoke(t, id)
	if c, err := b.st.Connection(ctx, b.org, id); err != nil || c.Credentials != nil {
		t.Fatalf("credentials outlived the revocation: %v", err)
	}
	if _, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{DisplayName: &name}); !errors.Is(err, linkflow.ErrConnectionRevoked) {
		t.Fatalf("patching a tombstone: %v", err)
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

// revoke takes a connection's lock and commits its revocation.
func (b *connBundle) revoke(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	lock := b.lock(t, id)
	if err := b.st.CommitRevoke(ctx, b.org, id, linkflow.RevokeCommit{Token: lock.Token, LastLinkID: lock.Conn.LastLinkID, At: b.clock()}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{}); !errors.Is(err, linkflow.ErrConnectionRevoked) {
		t.Fatalf("after the revocation: %v", err)
	}
}

// A connection's lock hands out a token no other holder can have had, even
// when Redis lost the lock and the connection's last writes (a failover, a
// restart within appendfsync's second): the first holder's commit is fenced
// and the lock stays with the second.
func TestConnectionLockTokensNeverRepeat(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	rdb := b.st.Redis()
	id := b.connect(t, "tmobile", "lena", "", tokens(1, b.clock().Add(time.Hour)))
	first, err := b.st.LockConnection(ctx, b.org, id, time.Minute)
	if err != nil || first.Token == "" {
		t.Fatalf("lock: %+v %v", first, err)
	}
	// What a failover to a replica that missed the lock's step leaves.
	if err := rdb.Del(ctx, b.st.KeyConnLock(id)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HIncrBy(ctx, b.st.KeyConn(id), "lockFence", -1).Err(); err != nil {
		t.Fatal(err)
	}
	second, err := b.st.LockConnection(ctx, b.org, id, time.Minute)
	if err != nil || second.Token == "" || second.Token == first.Token {
		t.Fatalf("second lock %+v %v, first token %q", second, err, first.Token)
	}
	err = b.st.CommitRevoke(ctx, b.org, id, linkflow.RevokeCommit{Token: first.Token, LastLinkID: first.Conn.LastLinkID, At: b.clock()})
	if !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("the first holder's commit: %v", err)
	}
	if again, err := b.st.LockConnection(ctx, b.org, id, time.Minute); err != nil || again.Token != "" {
		t.Fatalf("the lock left the second holder: %+v %v", again, err)
	}
}

// A connection lists its last ConnectionLinkIDs links, and keeps no more.
func TestConnectionListsItsLastLinks(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	var id string
	for i := range store.ConnectionLinkIDs + 2 {
		b.advance(time.Second)
		id = b.connect(t, "tmobile", "alice", "", tokens(i, b.clock().Add(time.Hour)))
	}
	if n, err := b.st.Redis().LLen(ctx, b.st.KeyConnLinks(id)).Result(); err != nil || n != store.ConnectionLinkIDs {
		t.Fatalf("the connection's links list holds %d (%v), want %d", n, err, store.ConnectionLinkIDs)
	}
	c, err := b.st.Connection(ctx, b.org, id)
	if err != nil {
		t.Fatal(err)
	}
	last := b.linkIDs[len(b.linkIDs)-store.ConnectionLinkIDs:]
	if len(c.LinkIDs) != len(last) || c.LinkIDs[0] != last[0] || c.LinkIDs[len(last)-1] != last[len(last)-1] {
		t.Errorf("the connection lists %d links from %v to %v, want its last %d", len(c.LinkIDs),
			c.LinkIDs[:1], c.LinkIDs[len(c.LinkIDs)-1:], store.ConnectionLinkIDs)
	}
}

// lock takes connection id's lock.
func (b *connBundle) lock(t *testing.T, id string) *linkflow.ConnectionLock {
	t.Helper()
	lock, err := b.st.LockConnection(context.Background(), b.org, id, time.Minute)
	if err != nil || lock.Token == "" {
		t.Fatalf("lock: %+v %v", lock, err)
	}
	return lock
}

// refresh commits a refresh of connection id under its lock: a good one
// with creds, a failed one without; with its connection event (recorded
// when the status changes), whose id it returns.
func (b *connBundle) refresh(t *testing.T, id string, creds *linkflow.Credentials) string {
	t.Helper()
	lock := b.lock(t, id)
	evID, typ := outbox.NewEventIDFor(id), linkflow.EventConnectionHealthy
	c := linkflow.RefreshCommit{Token: lock.Token, LastLinkID: lock.Conn.LastLinkID, At: b.clock(), Credentials: creds}
	if creds == nil {
		c.StatusMessage, typ = "refresh failed", linkflow.EventConnectionError
	}
	c.EventID, c.EventType, c.EventBody, c.Message = evID, typ, []byte(`{}`), outbox.EventMessage(b.org, evID, typ)
	if _, err := b.st.CommitRefresh(context.Background(), b.org, id, c); err != nil {
		t.Fatal(err)
	}
	return evID
}

// failRefresh commits a failed refresh of connection id: it is 'error'.
func (b *connBundle) failRefresh(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	b.refresh(t, id, nil)
	if c, err := b.st.Connection(ctx, b.org, id); err != nil || c.Status != linkflow.ConnError {
		t.Fatalf("after a failed refresh: %+v %v", c, err)
	}
}

// healthyEvent checks that m is a recorded connection.healthy event of
// connection id, showing it healthy.
func (b *connBundle) healthyEvent(t *testing.T, m linkflow.Message, id string) {
	t.Helper()
	recs, err := b.st.EventRecords(context.Background(), []string{m.ID})
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := recs[m.ID]
	var body struct {
		Type string `json:"type"`
		Data struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"data"`
	}
	if !ok || json.Unmarshal(rec.Body, &body) != nil || body.Type != linkflow.EventConnectionHealthy ||
		body.Data.ID != id || body.Data.Status != string(linkflow.ConnHealthy) || rec.WebhookURL != "https://hooks.example.com/x" ||
		m.Subject != outbox.EventSubject(b.org, linkflow.EventConnectionHealthy) || m.Outbox == "" {
		t.Fatalf("connection.healthy event %+v: record %+v (%s)", m, rec, rec.Body)
	}
}

// A link that makes an 'error' connection healthy again records its
// connection.healthy event with its commit's next step, for the worker to
// publish; a link that renews a healthy connection records none. When the
// process stops after the write, the relay records it before it publishes
// the link's own event, once.
func TestLinkThatRepairsAConnectionAnnouncesIt(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "u1", "", tokens(1, b.clock().Add(time.Hour)))
	b.failRefresh(t, id)
	fin := b.connectFin(t, "tmobile", "u1", tokens(2, b.clock().Add(time.Hour)))
	if fin.ConnectionEvent.ID == "" || fin.Event.ID == "" || len(fin.Messages()) != 2 {
		t.Fatalf("a repairing link's commit: %+v", fin)
	}
	b.healthyEvent(t, fin.ConnectionEvent, id)
	if again := b.connectFin(t, "tmobile", "u1", tokens(3, b.clock().Add(time.Hour))); again.ConnectionEvent.ID != "" {
		t.Fatalf("a link renewing a healthy connection announced it: %+v", again.ConnectionEvent)
	}
	if err := b.st.AckOutbox(ctx, b.due(t)...); err != nil {
		t.Fatal(err)
	}

	// The process stops after the write: the relay announces it.
	fin = b.repairStoppedAfterWrite(t, id, 4)
	if fin.Event.ID != "" || fin.ConnectionEvent.ID != "" {
		t.Fatalf("a commit that stopped after the write: %+v", fin)
	}
	due := b.due(t)
	var healthy []linkflow.Message
	linkEvent := false
	for _, m := range due {
		if m.Subject == outbox.EventSubject(b.org, linkflow.EventConnectionHealthy) {
			healthy = append(healthy, m)
		}
		linkEvent = linkEvent || m.ID == fin.EventID
	}
	if len(healthy) != 1 || !linkEvent {
		t.Fatalf("the relay's messages %+v: want the link's event and one connection.healthy", due)
	}
	b.healthyEvent(t, healthy[0], id)
	if err := b.st.AckOutbox(ctx, due...); err != nil {
		t.Fatal(err)
	}
	if more := b.due(t); len(more) != 0 {
		t.Fatalf("the relay again: %+v", more)
	}
}

// repairStoppedAfterWrite puts connection id (of u1 at tmobile) in error,
// then has a link with tokens n repair it in a process that stops after the
// write, before the connection.healthy event is recorded.
func (b *connBundle) repairStoppedAfterWrite(t *testing.T, id string, n int) *linkflow.Finished {
	t.Helper()
	b.failRefresh(t, id)
	b.st.DeferAnnouncements(true)
	defer b.st.DeferAnnouncements(false)
	return b.connectFin(t, "tmobile", "u1", tokens(n, b.clock().Add(time.Hour)))
}

// due is what the relay takes now.
func (b *connBundle) due(t *testing.T) []linkflow.Message {
	t.Helper()
	b.advance(time.Minute)
	msgs, err := b.st.DueOutbox(context.Background(), time.Second, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// A refresh that changes the status of a connection a link repaired, before
// the repair's event was recorded, records its own event and drops the
// repair's: the relay then records no connection.healthy after the
// connection.error (out of order), nor a second one after a later good
// refresh.
func TestRefreshAfterAnUnannouncedRepairDropsIt(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "u1", "", tokens(1, b.clock().Add(time.Hour)))
	b.repairStoppedAfterWrite(t, id, 2)
	b.failRefresh(t, id)
	if err := b.st.Redis().HGet(ctx, b.st.KeyConn(id), "repairedBy").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("the repair's mark after the refresh: %v", err)
	}
	// A good refresh records its own connection.healthy: the only one.
	evID := b.refresh(t, id, tokens(3, b.clock().Add(time.Hour)))
	var healthy []string
	for _, m := range b.due(t) {
		if m.Subject == outbox.EventSubject(b.org, linkflow.EventConnectionHealthy) {
			healthy = append(healthy, m.ID)
		}
	}
	if len(healthy) != 1 || healthy[0] != evID {
		t.Fatalf("connection.healthy events %v, want the refresh's %s alone", healthy, evID)
	}
}

// A refresh whose event is due is not committed over a connection changed
// since the event's body was read (a PATCH during the provider's call): the
// lock stays with the refresher and nothing is written, so it can build the
// body again. A refresh with no event to record commits as before.
func TestCommitRefreshOfAChangedConnection(t *testing.T) {
	t.Parallel()
	b := newConnBundle(t)
	ctx := context.Background()
	id := b.connect(t, "tmobile", "erin", "", tokens(1, b.clock().Add(time.Hour)))
	patch := func(plan string) {
		t.Helper()
		if _, err := b.st.UpdateConnection(ctx, b.org, id, linkflow.ConnectionPatch{Metadata: json.RawMessage(`{"plan":"` + plan + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(lock *linkflow.ConnectionLock, creds *linkflow.Credentials, version int64) error {
		evID, typ := outbox.NewEventIDFor(id), linkflow.EventConnectionError
		c := linkflow.RefreshCommit{Token: lock.Token, LastLinkID: lock.Conn.LastLinkID, At: b.clock(), Credentials: creds,
			EventID: evID, EventType: typ, EventBody: []byte(`{}`), Message: outbox.EventMessage(b.org, evID, typ), Version: version}
		if creds == nil {
			c.StatusMessage = "refresh failed"
		}
		_, err := b.st.CommitRefresh(ctx, b.org, id, c)
		return err
	}

	// healthy to healthy: no event, so a change does not matter.
	lock := b.lock(t, id)
	patch("silver")
	if err := commit(lock, tokens(2, b.clock().Add(time.Hour)), lock.Conn.Version); err != nil {
		t.Fatalf("a good refresh after a change: %v", err)
	}
	// healthy to error: the event's body would show the metadata before.
	outboxBefore := len(b.due(t))
	lock = b.lock(t, id)
	patch("gold")
	if err := commit(lock, nil, lock.Conn.Version); !errors.Is(err, linkflow.ErrChanged) {
		t.Fatalf("a failed refresh over a change: %v, want ErrChanged", err)
	}
	c, err := b.st.Connection(ctx, b.org, id)
	if err != nil || c.Status != linkflow.ConnHealthy || c.Refreshes != lock.Conn.Refreshes || c.Version != lock.Conn.Version+1 {
		t.Fatalf("after ErrChanged %+v %v, want it untouched but for the patch", c, err)
	}
	if again, err := b.st.LockConnection(ctx, b.org, id, time.Minute); err != nil || again.Token != "" {
		t.Fatalf("the lock after ErrChanged: %+v %v, want it still held", again, err)
	}
	if due := b.due(t); len(due) != outboxBefore {
		t.Fatalf("ErrChanged left %d outbox entries, want %d: %+v", len(due), outboxBefore, due)
	}
	if err := commit(lock, nil, c.Version); err != nil {
		t.Fatalf("the commit built again: %v", err)
	}
	if c, err := b.st.Connection(ctx, b.org, id); err != nil || c.Status != linkflow.ConnError {
		t.Fatalf("after the failed refresh %+v %v", c, err)
	}
	// Version 0 takes any: error to healthy over a change.
	lock = b.lock(t, id)
	patch("platinum")
	if err := commit(lock, tokens(3, b.clock().Add(time.Hour)), 0); err != nil {
		t.Fatalf("a commit without a version over a change: %v", err)
	}
	// A link that renewed the connection wins over a change (fenced, not changed).
	lock = b.lock(t, id)
	patch("bronze")
	b.connect(t, "tmobile", "erin", "", tokens(4, b.clock().Add(time.Hour)))
	if err := commit(lock, nil, lock.Conn.Version); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("a refresh over a renewal and a change: %v, want ErrFenced", err)
	}
}
