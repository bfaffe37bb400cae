package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// runToSuccess creates, claims and begins a link for username and returns
// the run, ready to finish.
func (b *bundle) runToSuccess(t *testing.T, username string) *linkflow.Run {
	t.Helper()
	ctx := context.Background()
	l := b.create(t, nil)
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, username, "pass_good"); err != nil {
		t.Fatal(err)
	}
	r, err := b.st.BeginRun(ctx, b.org, l.ID, "tok-"+l.ID, time.Minute)
	if err != nil || r.Verdict != linkflow.RunStart {
		t.Fatalf("begin: %+v %v", r, err)
	}
	r.Link.Status = linkflow.StatusSucceeded
	r.Link.CompletedAt = b.clock.Now()
	r.Link.Result = json.RawMessage(`{"ok":true}`)
	return r
}

func (b *bundle) finishRun(t *testing.T, r *linkflow.Run, token string) *linkflow.Finished {
	t.Helper()
	fin, err := b.st.FinishRun(context.Background(), r.Link, r.Token, &linkflow.ConnectionWrite{
		ID: r.ConnectionID, IntegrationID: r.Link.IntegrationID, Username: r.Link.Username,
		Credentials: &linkflow.Credentials{AccessToken: token}})
	if err != nil {
		t.Fatal(err)
	}
	return fin
}

// A link's commit and its connection's write are two steps in two shards.
// A process that stops between them leaves the link reading as running,
// its event unpublished; the relay writes the connection, then hands the
// event out, and the link reads as succeeded.
func TestConnectionWriteLeftToTheRelay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.runToSuccess(t, "alice")
	b.st.DeferConnectionWrites(true)
	fin := b.finishRun(t, r, "at_1")
	if fin.Event.ID != "" {
		t.Fatalf("an event to publish before its connection exists: %+v", fin.Event)
	}
	got, err := b.st.Link(ctx, b.org, r.Link.ID)
	if err != nil || got.Status != linkflow.StatusRunning || got.ConnectionID != "" || got.Result != nil {
		t.Fatalf("before the connection is written the link reads %+v %v, want running", got, err)
	}
	if _, err := b.st.Connection(ctx, b.org, fin.ConnectionID); err == nil {
		t.Fatal("the connection exists before its write")
	}
	due, err := b.st.DueOutbox(ctx, -time.Hour, 100)
	if len(due) != 0 || err == nil || !strings.Contains(err.Error(), fin.EventID) {
		t.Fatalf("the event went out while its connection could not be written, or nothing said why: %+v %v", due, err)
	}

	b.st.DeferConnectionWrites(false)
	due, err = b.st.DueOutbox(ctx, -time.Hour, 100)
	if err != nil || len(due) != 1 || due[0].ID != fin.EventID {
		t.Fatalf("relay round: %+v %v", due, err)
	}
	got, err = b.st.Link(ctx, b.org, r.Link.ID)
	if err != nil || got.Status != linkflow.StatusSucceeded || got.ConnectionID != fin.ConnectionID {
		t.Fatalf("after the relay: %+v %v", got, err)
	}
	c, err := b.st.Connection(ctx, b.org, fin.ConnectionID)
	if err != nil || c.Credentials.AccessToken != "at_1" || c.LastLinkID != r.Link.ID {
		t.Fatalf("connection after the relay: %+v %v", c, err)
	}
	// An intent that does not decode (a corrupted Redis) holds its event
	// back, and says so every round, rather than waiting in silence.
	r2 := b.runToSuccess(t, "bob")
	b.st.DeferConnectionWrites(true)
	fin2 := b.finishRun(t, r2, "at_2")
	b.st.DeferConnectionWrites(false)
	if err := b.st.Redis().HSet(ctx, b.st.KeyLink(r2.Link.ID), "connIntent", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	due, err = b.st.DueOutbox(ctx, -time.Hour, 100)
	if err == nil || !strings.Contains(err.Error(), fin2.EventID) || !strings.Contains(err.Error(), "connection intent") {
		t.Fatalf("a corrupt intent: %+v %v", due, err)
	}
	for _, m := range due {
		if m.ID == fin2.EventID {
			t.Fatalf("the event of a corrupt intent went out: %+v", m)
		}
	}
	// A second round (another relay) writes nothing twice.
	if _, err := b.st.DueOutbox(ctx, -time.Hour, 100); err != nil && !strings.Contains(err.Error(), fin2.EventID) {
		t.Fatal(err)
	}
	if c, _ := b.st.Connection(ctx, b.org, fin.ConnectionID); len(c.LinkIDs) != 1 {
		t.Fatalf("links of the connection %v, want one", c.LinkIDs)
	}
}

// The same account always has the same connection; a link that finished
// earlier but whose write comes late does not overwrite a later link's.
func TestLateConnectionWriteLosesToNewer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	early := b.runToSuccess(t, "bob")
	b.clock.Add(time.Second)
	late := b.runToSuccess(t, "bob")
	if early.ConnectionID != late.ConnectionID || !strings.HasPrefix(early.ConnectionID, "conn_") {
		t.Fatalf("one account, connections %s and %s", early.ConnectionID, late.ConnectionID)
	}
	b.st.DeferConnectionWrites(true)
	b.finishRun(t, early, "at_early") // finished at t, written late
	b.st.DeferConnectionWrites(false)
	early.Link.CompletedAt = b.clock.Now()
	b.clock.Add(time.Second)
	late.Link.CompletedAt = b.clock.Now()
	b.finishRun(t, late, "at_late")
	if _, err := b.st.DueOutbox(ctx, -time.Hour, 100); err != nil {
		t.Fatal(err)
	}
	c, err := b.st.Connection(ctx, b.org, late.ConnectionID)
	if err != nil || c.Credentials.AccessToken != "at_late" || c.LastLinkID != late.Link.ID {
		t.Fatalf("connection %+v %v, want the later link's credentials", c, err)
	}
	if got, _ := b.st.Link(ctx, b.org, early.Link.ID); got.Status != linkflow.StatusSucceeded {
		t.Fatalf("the early link reads %s once its (stale) write was settled", got.Status)
	}
}

// A delete that took the connection's lock while a finished link's write
// was still on its way (a Cluster, a process stopped between the two
// steps) revoked credentials that write does not hold: the write, applied
// late, must not bring the deleted connection back with credentials
// nobody revoked at the provider. A link that finishes after the delete
// connects the account again.
func TestLateConnectionWriteLosesToARevocation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.finishRun(t, b.runToSuccess(t, "bob"), "at_0")
	b.clock.Add(time.Second)
	late := b.runToSuccess(t, "bob")
	b.st.DeferConnectionWrites(true)
	b.finishRun(t, late, "at_late")
	b.st.DeferConnectionWrites(false)

	b.clock.Add(time.Second)
	lock, err := b.st.LockConnection(ctx, b.org, late.ConnectionID, time.Minute)
	if err != nil || lock.Token == "" || lock.Conn.LastLinkID == late.Link.ID {
		t.Fatalf("lock: %+v %v", lock, err)
	}
	if err := b.st.CommitRevoke(ctx, b.org, late.ConnectionID, linkflow.RevokeCommit{Token: lock.Token,
		LastLinkID: lock.Conn.LastLinkID, At: b.clock.Now(), AtProvider: true, StatusMessage: "deleted"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.DueOutbox(ctx, -time.Hour, 100); err != nil {
		t.Fatal(err)
	}
	c, err := b.st.Connection(ctx, b.org, late.ConnectionID)
	if err != nil || c.Status != linkflow.ConnRevoked || c.Credentials != nil {
		t.Fatalf("a deleted connection after a late write: %+v %v, want revoked without credentials", c, err)
	}
	if got, _ := b.st.Link(ctx, b.org, late.Link.ID); got.Status != linkflow.StatusSucceeded {
		t.Fatalf("the late link reads %s once its (stale) write was settled", got.Status)
	}

	b.clock.Add(time.Second)
	again := b.runToSuccess(t, "bob")
	again.Link.CompletedAt = b.clock.Now()
	b.finishRun(t, again, "at_again")
	if _, err := b.st.DueOutbox(ctx, -time.Hour, 100); err != nil {
		t.Fatal(err)
	}
	c, err = b.st.Connection(ctx, b.org, late.ConnectionID)
	if err != nil || c.Status == linkflow.ConnRevoked || c.Credentials == nil || c.Credentials.AccessToken != "at_again" {
		t.Fatalf("reconnected after the delete: %+v %v", c, err)
	}
}

// A connection write still waiting for the relay holds sealed credentials:
// rotate-data re-seals them with the rest, so the old key can be retired
// and the relay, with the new key alone, still writes the connection.
func TestKeyRotationResealsAWaitingConnectionWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keyring := func(spec string) *store.Keyring {
		kr, err := store.ParseKeyring(spec)
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	oldSpec, newSpec := store.GenerateKey("old"), store.GenerateKey("new")
	var cfg store.Config
	b := setupWith(t, func(c *store.Config) { c.Keyring = keyring(oldSpec); cfg = *c })
	with := func(spec string) *store.Store {
		c := cfg
		c.Keyring = keyring(spec)
		st, err := store.New(c)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	r := b.runToSuccess(t, "carol")
	b.st.DeferConnectionWrites(true)
	fin := b.finishRun(t, r, "at_rotated")

	sealed, err := with(newSpec+","+oldSpec).RotateData(ctx, true)
	if err != nil || sealed.Resealed == 0 || len(sealed.ByKey) != 1 || sealed.ByKey["new"] == 0 {
		t.Fatalf("rotate-data: %+v %v, want everything sealed with the new key", sealed, err)
	}
	onlyNew := with(newSpec)
	if due, err := onlyNew.DueOutbox(ctx, -time.Hour, 100); err != nil || len(due) != 1 || due[0].ID != fin.EventID {
		t.Fatalf("relay with the new key alone: %+v %v", due, err)
	}
	c, err := onlyNew.Connection(ctx, b.org, fin.ConnectionID)
	if err != nil || c.Credentials == nil || c.Credentials.AccessToken != "at_rotated" {
		t.Fatalf("connection written after the rotation: %+v %v", c, err)
	}
}

// A link whose connection's write waits reads as running, but it ended: a
// cancel is refused with its real status, and changes nothing.
func TestCancelRefusedWhileTheConnectionWriteWaits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.runToSuccess(t, "dave")
	b.st.DeferConnectionWrites(true)
	b.finishRun(t, r, "at_1")
	b.st.DeferConnectionWrites(false)
	if got, err := b.st.Link(ctx, b.org, r.Link.ID); err != nil || got.Status != linkflow.StatusRunning {
		t.Fatalf("before the write: %+v %v, want it read as running", got, err)
	}
	res, err := b.st.CancelLink(ctx, b.org, r.Link.ID)
	var ended *linkflow.StateError
	if !errors.As(err, &ended) || ended.Status != linkflow.StatusSucceeded || ended.Action != linkflow.ActionCancel {
		t.Fatalf("cancel: %+v %v, want refused as succeeded", res, err)
	}
	if _, err := b.st.DueOutbox(ctx, -time.Hour, 100); err != nil {
		t.Fatal(err)
	}
	got, err := b.st.Link(ctx, b.org, r.Link.ID)
	if err != nil || got.Status != linkflow.StatusSucceeded || got.CancelRequested {
		t.Fatalf("after the write: %+v %v", got, err)
	}
}

// failHGet fails the HGET (or HMGET) of one key in a pipeline, after the pipeline ran,
// and answers with the error go-redis gives when another read that found
// nothing came first: redis.Nil.
type failHGet struct {
	key atomic.Value // string
}

func (f *failHGet) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f *failHGet) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f *failHGet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		key, _ := f.key.Load().(string)
		hit, none := false, false
		for _, c := range cmds {
			if (c.Name() == "hget" || c.Name() == "hmget") && len(c.Args()) > 1 && c.Args()[1] == key {
				c.SetErr(errors.New("LOADING Redis is loading the dataset in memory"))
				hit = true
			} else if errors.Is(c.Err(), redis.Nil) {
				none = true
			}
		}
		if hit && none {
			return redis.Nil
		}
		return err
	}
}

// A relay round hands an event out only once it read its link's pending
// connection write: a read that failed, in a pipeline whose first error is
// another link's "none" (redis.Nil), holds the event back instead of
// publishing it before its connection exists.
func TestDueOutboxHoldsAnEventWhoseWriteCouldNotBeRead(t *testing.T) {
	t.Parallel()
	hook := &failHGet{}
	b := setupWith(t, func(c *store.Config) { c.Redis.AddHook(hook); c.NoAutoPipeline = true })
	ctx := context.Background()
	b.finished(t, "https://hooks.example.com/a") // an event without a connection to write
	r := b.runToSuccess(t, "carol")
	b.st.DeferConnectionWrites(true)
	fin := b.finishRun(t, r, "at_1")
	b.st.DeferConnectionWrites(false)
	hook.key.Store(b.st.KeyLink(r.Link.ID))
	due, err := b.st.DueOutbox(ctx, -time.Hour, 100)
	for _, m := range due {
		if m.ID == fin.EventID {
			t.Fatalf("the event went out while its connection write could not be read (err %v)", err)
		}
	}
	if err == nil || !strings.Contains(err.Error(), fin.EventID) {
		t.Fatalf("nothing said why the event waits: %v", err)
	}
	hook.key.Store("")
	due, err = b.st.DueOutbox(ctx, -time.Hour, 100)
	if err != nil || !slices.ContainsFunc(due, func(m linkflow.Message) bool { return m.ID == fin.EventID }) {
		t.Fatalf("next round: %+v %v", due, err)
	}
	if got, err := b.st.Link(ctx, b.org, r.Link.ID); err != nil || got.Status != linkflow.StatusSucceeded {
		t.Fatalf("link after the relay: %+v %v", got, err)
	}
}

// A session that asks again after its commit's reply was lost gets its own
// commit back, not "fenced": it publishes the event and acknowledges the
// message instead of leaving both to the relay and the ack wait. Another
// lease token is still fenced.
func TestFinishAskedAgainByItsSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.runToSuccess(t, "dora")
	first := b.finishRun(t, r, "at_1")
	again, err := b.st.FinishRun(ctx, r.Link, r.Token, &linkflow.ConnectionWrite{
		ID: r.ConnectionID, IntegrationID: r.Link.IntegrationID, Username: r.Link.Username,
		Credentials: &linkflow.Credentials{AccessToken: "at_1"}})
	if err != nil || again.EventID != first.EventID || again.ConnectionID != first.ConnectionID {
		t.Fatalf("asked again: %+v %v, first %+v", again, err, first)
	}
	if _, err := b.st.FinishRun(ctx, r.Link, "tok-other", nil); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("another token: %v", err)
	}
	if c, err := b.st.Connection(ctx, b.org, first.ConnectionID); err != nil || len(c.LinkIDs) != 1 {
		t.Fatalf("connection after asking again: %+v %v", c, err)
	}
	// A link another step ended (failed by version while its session's
	// lease had lapsed) is not that session's own.
	r2 := b.runToSuccess(t, "eve")
	if err := b.st.Redis().Del(ctx, b.st.KeyLinkLease(r2.Link.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if fin, err := b.st.FailLink(ctx, b.org, r2.Link.ID, linkflow.LinkError{Code: linkflow.FailureAttemptsExhausted, Message: "x"}); err != nil || fin == nil {
		t.Fatalf("fail: %+v %v", fin, err)
	}
	if _, err := b.st.FinishRun(ctx, r2.Link, r2.Token, nil); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("the lapsed session's commit after the link was failed: %v", err)
	}
}

// On a Cluster, a session that asks again after its commit's reply was lost
// applies the connection's write waiting in the link, which carries the
// first commit's time: a write made now would carry a later one, able to
// outrun a delete or a newer link's write.
func TestFinishAskedAgainAppliesTheFirstWrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.runToSuccess(t, "fay")
	b.st.DeferConnectionWrites(true) // the first commit's write waits in the link, as on a Cluster
	first := b.finishRun(t, r, "at_1")
	b.st.DeferConnectionWrites(false)
	b.clock.Add(time.Minute)
	again, err := b.st.FinishRun(ctx, r.Link, r.Token, &linkflow.ConnectionWrite{
		ID: r.ConnectionID, IntegrationID: r.Link.IntegrationID, Username: r.Link.Username,
		Credentials: &linkflow.Credentials{AccessToken: "at_1"}})
	if err != nil || again.EventID != first.EventID {
		t.Fatalf("asked again: %+v %v", again, err)
	}
	if again.Event.ID != first.EventID {
		t.Fatalf("no event to publish once the connection is written: %+v", again.Event)
	}
	c, err := b.st.Connection(ctx, b.org, first.ConnectionID)
	if err != nil || c.LastLinkID != r.Link.ID || c.UpdatedAt.After(b.clock.Now().Add(-time.Minute)) {
		t.Fatalf("the connection after asking again: %+v %v, want the first commit's write", c, err)
	}
	if got, err := b.st.Link(ctx, b.org, r.Link.ID); err != nil || got.Status != linkflow.StatusSucceeded {
		t.Fatalf("link after asking again: %+v %v", got, err)
	}
}
