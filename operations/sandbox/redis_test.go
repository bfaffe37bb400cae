package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/testenv"
)

func newSandboxStore(t *testing.T) *RedisStore {
	t.Helper()
	rdb, _ := testenv.Redis(t)
	return NewRedisStore(rdb)
}

// ref names an account of organization org_a.
func ref(integration, username string) AccountRef {
	return AccountRef{OrgID: "org_a", Integration: integration, Username: username}
}

func TestSandboxWriteOncePerKey(t *testing.T) {
	t.Parallel()
	s := newSandboxStore(t)
	ctx := context.Background()

	// Many writers race with one key; one wins and the rest see its record.
	const writers = 16
	var wg sync.WaitGroup
	results := make([]WriteRecord, writers)
	replayed := make([]bool, writers)
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := WriteRecord{
				IdempotencyKey: "link_a:1", Resource: "paymentMethod", Action: "write",
				Result: json.RawMessage(fmt.Sprintf(`{"writer":%d}`, i)), At: time.UnixMilli(1000).UTC(),
			}
			results[i], replayed[i], errs[i] = s.ApplySandboxWrite(ctx, ref("tmobile", "u1"), w)
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range writers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !replayed[i] {
			fresh++
		}
		if string(results[i].Result) != string(results[0].Result) {
			t.Fatalf("writer %d got %s, writer 0 got %s", i, results[i].Result, results[0].Result)
		}
	}
	if fresh != 1 {
		t.Fatalf("%d writers applied the write, want 1", fresh)
	}
	log, err := s.SandboxWriteLog(ctx, ref("tmobile", "u1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].IdempotencyKey != "link_a:1" || string(log[0].Result) != string(results[0].Result) {
		t.Fatalf("write log = %+v", log)
	}

	// Another key adds an item, newest first; other accounts are untouched.
	if _, replay, err := s.ApplySandboxWrite(ctx, ref("tmobile", "u1"), WriteRecord{
		IdempotencyKey: "link_b:0", Resource: "paymentMethod", Action: "write", Result: json.RawMessage(`{"n":2}`),
	}); err != nil || replay {
		t.Fatalf("second key: replayed %v, err %v", replay, err)
	}
	items, err := s.SandboxItems(ctx, ref("tmobile", "u1"), "paymentMethod")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || string(items[0]) != `{"n":2}` {
		t.Fatalf("items = %s", items)
	}
	// Other accounts, and the same username of another organization, have
	// their own items.
	other := AccountRef{OrgID: "org_b", Integration: "tmobile", Username: "u1"}
	if items, err := s.SandboxItems(ctx, other, "paymentMethod"); err != nil || len(items) != 0 {
		t.Fatalf("another organization's account: items %s, err %v", items, err)
	}
	for _, acct := range [][2]string{{"tmobile", "u2"}, {"att", "u1"}} {
		items, err := s.SandboxItems(ctx, ref(acct[0], acct[1]), "paymentMethod")
		if err != nil || len(items) != 0 {
			t.Fatalf("%v: items %s, err %v", acct, items, err)
		}
	}
}

func TestSandboxSessionCount(t *testing.T) {
	t.Parallel()
	s := newSandboxStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_000_000)
	ttl := time.Minute
	open := func(id string, now time.Time) (int, error) {
		st, err := s.StartSandboxSession(ctx, SessionStart{
			Account: ref("att", "u"), Count: &SessionCount{ID: id, Now: now, ExpiresAt: now.Add(ttl)},
		})
		return st.Live, err
	}

	for i := range 3 {
		n, err := open(fmt.Sprint("s", i), now)
		if err != nil || n != i+1 {
			t.Fatalf("open %d: live %d, err %v", i, n, err)
		}
	}
	if err := s.CloseSandboxSession(ctx, "att", "s0"); err != nil {
		t.Fatal(err)
	}
	check := func(at time.Time, wantLive, wantMax int) {
		t.Helper()
		live, maximum, err := s.SandboxSessions(ctx, "att", at)
		if err != nil || live != wantLive || maximum != wantMax {
			t.Fatalf("at %v: live %d max %d err %v, want %d and %d", at, live, maximum, err, wantLive, wantMax)
		}
	}
	check(now, 2, 3)

	// A renewed session outlives one whose process died.
	if err := s.RenewSandboxSession(ctx, "att", "s1", now.Add(3*ttl)); err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * ttl)
	check(later, 1, 3)
	// Renewing a closed session does not bring it back.
	if err := s.RenewSandboxSession(ctx, "att", "s0", later.Add(ttl)); err != nil {
		t.Fatal(err)
	}
	check(later, 1, 3)

	if err := s.ResetSandboxSessions(ctx, "att", later); err != nil {
		t.Fatal(err)
	}
	check(later, 1, 1)
	if n, err := open("s3", later); err != nil || n != 2 {
		t.Fatalf("open after expiry: live %d, err %v", n, err)
	}
	check(later, 2, 2)
	if live, maximum, err := s.SandboxSessions(ctx, "verizon", later); err != nil || live != 0 || maximum != 0 {
		t.Fatalf("another integration: live %d max %d err %v", live, maximum, err)
	}
}

func TestSandboxGrant(t *testing.T) {
	t.Parallel()
	s := newSandboxStore(t)
	ctx := context.Background()
	issued := time.UnixMilli(5000).UTC()

	if g, err := s.SandboxGrant(ctx, "nope"); err != nil || g != nil {
		t.Fatalf("unknown grant: %+v, %v", g, err)
	}
	if _, err := s.StartSandboxSession(ctx, SessionStart{Account: ref("verizon", "u"), Grant: &Grant{
		ID: "g1", Integration: "verizon", Username: "u", AccessHash: "a1", RefreshHash: "r1", IssuedAt: issued,
	}}); err != nil {
		t.Fatal(err)
	}
	g, err := s.SandboxGrant(ctx, "g1")
	if err != nil || g == nil || g.Status != GrantActive || g.Integration != "verizon" || !g.IssuedAt.Equal(issued) {
		t.Fatalf("grant = %+v, %v", g, err)
	}

	steps := []struct {
		name string
		op   func() (bool, error)
		want bool
	}{
		{"rotate with a wrong token", func() (bool, error) { return s.RotateSandboxGrant(ctx, "g1", "r0", "a2", "r2") }, false},
		{"rotate", func() (bool, error) { return s.RotateSandboxGrant(ctx, "g1", "r1", "a2", "r2") }, true},
		{"rotate with the replaced token", func() (bool, error) { return s.RotateSandboxGrant(ctx, "g1", "r1", "a3", "r3") }, false},
		{"revoke with the replaced token", func() (bool, error) { return s.RevokeSandboxGrant(ctx, "g1", "a1", issued) }, false},
		{"revoke with the access token", func() (bool, error) { return s.RevokeSandboxGrant(ctx, "g1", "a2", issued) }, true},
		{"revoke again", func() (bool, error) { return s.RevokeSandboxGrant(ctx, "g1", "r2", issued.Add(time.Hour)) }, true},
		{"rotate a revoked grant", func() (bool, error) { return s.RotateSandboxGrant(ctx, "g1", "r2", "a4", "r4") }, false},
		{"revoke an unknown grant", func() (bool, error) { return s.RevokeSandboxGrant(ctx, "g2", "a2", issued) }, false},
	}
	for _, st := range steps {
		got, err := st.op()
		if err != nil || got != st.want {
			t.Fatalf("%s: %v, %v; want %v", st.name, got, err, st.want)
		}
	}
	g, err = s.SandboxGrant(ctx, "g1")
	if err != nil || g.Status != GrantRevoked || g.Refreshes != 1 || !g.RevokedAt.Equal(issued) {
		t.Fatalf("revoked grant = %+v, %v", g, err)
	}
}

// A login's whole start is one pipeline: the count, the grant and the
// account's written items, in three cluster slots. It survives Redis losing
// its script cache.
func TestStartSandboxSession(t *testing.T) {
	t.Parallel()
	s := newSandboxStore(t)
	rdb := s.rdb
	ctx := context.Background()
	now := time.UnixMilli(2_000_000)
	for i, result := range []string{`{"n":1}`, `{"n":2}`} {
		if _, _, err := s.ApplySandboxWrite(ctx, ref("att", "u"), WriteRecord{
			IdempotencyKey: fmt.Sprint("link_a:", i), Resource: "paymentMethod", Action: "write", Result: json.RawMessage(result),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	start := SessionStart{
		Account: ref("att", "u"),
		Count:   &SessionCount{ID: "s1", Now: now, ExpiresAt: now.Add(time.Minute)},
		Grant:   &Grant{ID: "g1", Integration: "att", Username: "u", AccessHash: "a1", RefreshHash: "r1", IssuedAt: now},
		Load:    []string{"paymentMethod", "orderHistory"},
	}
	got, err := s.StartSandboxSession(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	if got.Live != 1 || len(got.Written["orderHistory"]) != 0 || fmt.Sprintf("%s", got.Written["paymentMethod"]) != `[{"n":2} {"n":1}]` {
		t.Fatalf("started %+v", got)
	}
	if g, err := s.SandboxGrant(ctx, "g1"); err != nil || g == nil || g.Status != GrantActive || g.AccessHash != "a1" {
		t.Fatalf("grant %+v, %v", g, err)
	}
	if ttl, err := rdb.PTTL(ctx, grantKey("g1")).Result(); err != nil || ttl <= 0 {
		t.Fatalf("grant ttl %v, %v", ttl, err)
	}
	if live, maximum, err := s.SandboxSessions(ctx, "att", now); err != nil || live != 1 || maximum != 1 {
		t.Fatalf("live %d max %d err %v", live, maximum, err)
	}
	// Nothing asked, nothing done.
	if got, err := s.StartSandboxSession(ctx, SessionStart{Account: ref("att", "u")}); err != nil || got.Live != 0 || got.Written != nil {
		t.Fatalf("empty start: %+v, %v", got, err)
	}
}
