package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/operations/sandbox"
)

var _ sandbox.AccountStore = (*Store)(nil)

var (
	sandboxWriteScript         = script("sandbox_write")
	sandboxOpenSessionScript   = script("sandbox_open_session")
	sandboxResetSessionsScript = script("sandbox_reset_sessions")
	sandboxRotateGrantScript   = script("sandbox_rotate_grant")
	sandboxRevokeGrantScript   = script("sandbox_revoke_grant")
)

// The sandbox keeps its accounts for a while after their last write, a
// bounded number of written items and log entries each, so that a benchmark
// writing to one account for hours cannot grow it without bound.
const (
	sandboxRetention   = 30 * 24 * time.Hour
	sandboxItemsKept   = sandbox.ItemsKept
	sandboxWriteLogMax = 1000
)

// ApplySandboxWrite records a sandbox write once per idempotency key.
func (s *Store) ApplySandboxWrite(ctx context.Context, integration, username string, w sandbox.WriteRecord) (sandbox.WriteRecord, bool, error) {
	rec, err := json.Marshal(w)
	if err != nil {
		return sandbox.WriteRecord{}, false, err
	}
	keys := []string{
		sandboxIdemKey(integration, username, w.IdempotencyKey),
		sandboxItemsKey(integration, username, w.Resource),
		sandboxWriteLogKey(integration, username),
	}
	res, err := sandboxWriteScript.Run(ctx, s.rdb, keys, rec, []byte(w.Result),
		sandboxRetention.Milliseconds(), sandboxItemsKept, sandboxWriteLogMax).Result()
	if err != nil {
		return sandbox.WriteRecord{}, false, fmt.Errorf("apply sandbox write %s: %w", w.IdempotencyKey, err)
	}
	arr, err := replyStrings(res)
	if err != nil || len(arr) != 2 {
		return sandbox.WriteRecord{}, false, fmt.Errorf("apply sandbox write %s: unexpected reply %v", w.IdempotencyKey, res)
	}
	var first sandbox.WriteRecord
	if err := json.Unmarshal([]byte(arr[1]), &first); err != nil {
		return sandbox.WriteRecord{}, false, fmt.Errorf("apply sandbox write %s: %w", w.IdempotencyKey, err)
	}
	return first, arr[0] == "1", nil
}

// SandboxItems returns what writes added to resource in the account, newest
// first.
func (s *Store) SandboxItems(ctx context.Context, integration, username, resource string) ([]json.RawMessage, error) {
	vals, err := s.rdb.LRange(ctx, sandboxItemsKey(integration, username, resource), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("sandbox items %s/%s: %w", integration, resource, err)
	}
	return rawItems(vals), nil
}

func rawItems(vals []string) []json.RawMessage {
	out := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		out[i] = json.RawMessage(v)
	}
	return out
}

// SandboxWriteLog returns the account's write log, oldest first.
func (s *Store) SandboxWriteLog(ctx context.Context, integration, username string) ([]sandbox.WriteRecord, error) {
	vals, err := s.rdb.LRange(ctx, sandboxWriteLogKey(integration, username), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("sandbox write log %s: %w", integration, err)
	}
	out := make([]sandbox.WriteRecord, len(vals))
	for i, v := range vals {
		if err := json.Unmarshal([]byte(v), &out[i]); err != nil {
			return nil, fmt.Errorf("sandbox write log %s: %w", integration, err)
		}
	}
	return out, nil
}

// StartSandboxSession does a sandbox login step's work in one pipeline: the
// session count, the grant and the account's items are in three slots, so
// neither one script nor one MULTI can hold them.
func (s *Store) StartSandboxSession(ctx context.Context, st sandbox.SessionStart) (sandbox.SessionStarted, error) {
	var count *redis.Cmd
	loads := make([]*redis.StringSliceCmd, len(st.Load))
	run := func() error {
		pipe := s.rdb.Pipeline()
		if c := st.Count; c != nil {
			count = sandboxOpenSessionScript.EvalSha(ctx, pipe,
				[]string{sandboxSessionsKey(st.Integration), sandboxMaxSessionsKey(st.Integration)},
				ms(c.Now), ms(c.ExpiresAt), c.ID)
		}
		if g := st.Grant; g != nil {
			key := sandboxGrantKey(g.ID)
			pipe.HSet(ctx, key,
				"integration", g.Integration, "username", g.Username,
				"access", g.AccessHash, "refresh", g.RefreshHash,
				"status", cmp.Or(g.Status, sandbox.GrantActive), "refreshes", g.Refreshes, "issuedAt", ms(g.IssuedAt))
			pipe.PExpire(ctx, key, sandboxRetention)
		}
		for i, r := range st.Load {
			loads[i] = pipe.LRange(ctx, sandboxItemsKey(st.Integration, st.Username, r), 0, -1)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if isNoScript(err) {
		// Running it all again is safe: the script did nothing, and saving
		// the same grant twice stores the same fields.
		if err = s.LoadScripts(ctx); err == nil {
			err = run()
		}
	}
	if err != nil {
		return sandbox.SessionStarted{}, fmt.Errorf("start sandbox session %s: %w", st.Integration, err)
	}
	var out sandbox.SessionStarted
	if count != nil {
		n, err := count.Int()
		if err != nil {
			return sandbox.SessionStarted{}, fmt.Errorf("start sandbox session %s: %w", st.Integration, err)
		}
		out.Live = n
	}
	if len(st.Load) > 0 {
		out.Written = make(map[string][]json.RawMessage, len(st.Load))
		for i, r := range st.Load {
			out.Written[r] = rawItems(loads[i].Val())
		}
	}
	return out, nil
}

// RenewSandboxSession moves a live session's expiry; a session that already
// expired stays gone.
func (s *Store) RenewSandboxSession(ctx context.Context, integration, id string, expiresAt time.Time) error {
	err := s.rdb.ZAddXX(ctx, sandboxSessionsKey(integration), redis.Z{Score: float64(ms(expiresAt)), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("renew sandbox session %s: %w", integration, err)
	}
	return nil
}

// CloseSandboxSession stops counting a session.
func (s *Store) CloseSandboxSession(ctx context.Context, integration, id string) error {
	if err := s.rdb.ZRem(ctx, sandboxSessionsKey(integration), id).Err(); err != nil {
		return fmt.Errorf("close sandbox session %s: %w", integration, err)
	}
	return nil
}

// SandboxSessions returns the live session count and the recorded maximum.
func (s *Store) SandboxSessions(ctx context.Context, integration string, now time.Time) (int, int, error) {
	pipe := s.rdb.Pipeline()
	live := pipe.ZCount(ctx, sandboxSessionsKey(integration), "("+strconv.FormatInt(ms(now), 10), "+inf")
	maximum := pipe.Get(ctx, sandboxMaxSessionsKey(integration))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("sandbox sessions %s: %w", integration, err)
	}
	m, err := maximum.Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("sandbox sessions %s: %w", integration, err)
	}
	return int(live.Val()), m, nil
}

// ResetSandboxSessions sets the recorded maximum to the live count.
func (s *Store) ResetSandboxSessions(ctx context.Context, integration string, now time.Time) error {
	keys := []string{sandboxSessionsKey(integration), sandboxMaxSessionsKey(integration)}
	if err := sandboxResetSessionsScript.Run(ctx, s.rdb, keys, ms(now)).Err(); err != nil {
		return fmt.Errorf("reset sandbox sessions %s: %w", integration, err)
	}
	return nil
}

// SandboxGrant returns a grant, nil when there is none.
func (s *Store) SandboxGrant(ctx context.Context, id string) (*sandbox.Grant, error) {
	m, err := s.rdb.HGetAll(ctx, sandboxGrantKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("sandbox grant %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	g := &sandbox.Grant{
		ID: id, Integration: m["integration"], Username: m["username"],
		AccessHash: m["access"], RefreshHash: m["refresh"], Status: m["status"],
		Refreshes: int(atoi(m["refreshes"])), IssuedAt: sandboxTime(m["issuedAt"]), RevokedAt: sandboxTime(m["revokedAt"]),
	}
	return g, nil
}

// RotateSandboxGrant replaces an active grant's tokens.
func (s *Store) RotateSandboxGrant(ctx context.Context, id, refreshHash, newAccessHash, newRefreshHash string) (bool, error) {
	n, err := sandboxRotateGrantScript.Run(ctx, s.rdb, []string{sandboxGrantKey(id)},
		refreshHash, newAccessHash, newRefreshHash, sandboxRetention.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("rotate sandbox grant %s: %w", id, err)
	}
	return n == 1, nil
}

// RevokeSandboxGrant revokes a grant.
func (s *Store) RevokeSandboxGrant(ctx context.Context, id, tokenHash string, at time.Time) (bool, error) {
	n, err := sandboxRevokeGrantScript.Run(ctx, s.rdb, []string{sandboxGrantKey(id)}, tokenHash, ms(at)).Int()
	if err != nil {
		return false, fmt.Errorf("revoke sandbox grant %s: %w", id, err)
	}
	return n == 1, nil
}

// sandboxTime reads a time stored as Unix milliseconds; zero when unset.
func sandboxTime(s string) time.Time {
	if n := atoi(s); n != 0 {
		return time.UnixMilli(n)
	}
	return time.Time{}
}
