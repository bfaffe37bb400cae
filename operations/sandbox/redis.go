package sandbox

import (
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/linkflow/linkflow/internal/luascript"
	"github.com/redis/go-redis/v9"
)

// RedisStore keeps the sandbox's shared state in Redis: what writes changed
// in each account, the live session counts and the grants logins handed
// out. Its keys are its own (keys below); an account's keys share one hash
// tag, so a write's check-and-apply is one slot on Redis Cluster; session
// counting shares its integration's tag; a grant is one key.
type RedisStore struct {
	rdb redis.UniversalClient
}

var _ AccountStore = (*RedisStore)(nil)

// NewRedisStore returns the sandbox's state on rdb (single node, Sentinel
// or Cluster).
func NewRedisStore(rdb redis.UniversalClient) *RedisStore { return &RedisStore{rdb: rdb} }

// The sandbox keeps its accounts for a while after their last write, a
// bounded number of written items and log entries each, so that a benchmark
// writing to one account for hours cannot grow it without bound.
const (
	retention   = 30 * 24 * time.Hour
	writeLogMax = 1000
)

//go:embed lua/*.lua
var luaFS embed.FS

func script(name string) *redis.Script { return luascript.Load(luaFS, name) }

var (
	writeScript         = script("write")
	openSessionScript   = script("open_session")
	resetSessionsScript = script("reset_sessions")
	rotateGrantScript   = script("rotate_grant")
	revokeGrantScript   = script("revoke_grant")
)

// Keys. Every key the sandbox uses is built here.
const keyPrefix = "lf:sbx:"

// accountPrefix is the prefix of an account's keys: its hash tag is a digest
// of the account, so any organization id or username makes a valid tag.
func accountPrefix(a AccountRef) string {
	sum := sha256.Sum256([]byte(a.OrgID + "\x00" + a.Integration + "\x00" + a.Username))
	return keyPrefix + "{" + hex.EncodeToString(sum[:10]) + "}:"
}
func idemKey(a AccountRef, key string) string       { return accountPrefix(a) + "idem:" + key }
func itemsKey(a AccountRef, resource string) string { return accountPrefix(a) + "items:" + resource }
func writeLogKey(a AccountRef) string               { return accountPrefix(a) + "writes" }
func sessionsKey(integration string) string         { return keyPrefix + "sessions:{" + integration + "}" }
func maxSessionsKey(integration string) string {
	return keyPrefix + "sessions:{" + integration + "}:max"
}
func grantKey(id string) string { return keyPrefix + "grant:{" + id + "}" }

// ApplySandboxWrite records a sandbox write once per idempotency key.
func (s *RedisStore) ApplySandboxWrite(ctx context.Context, a AccountRef, w WriteRecord) (WriteRecord, bool, error) {
	rec, err := json.Marshal(w)
	if err != nil {
		return WriteRecord{}, false, err
	}
	keys := []string{idemKey(a, w.IdempotencyKey), itemsKey(a, w.Resource), writeLogKey(a)}
	res, err := writeScript.Run(ctx, s.rdb, keys, rec, []byte(w.Result), retention.Milliseconds(), ItemsKept, writeLogMax).Slice()
	if err != nil {
		return WriteRecord{}, false, fmt.Errorf("apply sandbox write %s: %w", w.IdempotencyKey, err)
	}
	if len(res) != 2 {
		return WriteRecord{}, false, fmt.Errorf("apply sandbox write %s: unexpected reply %v", w.IdempotencyKey, res)
	}
	firstJSON, _ := res[1].(string)
	var first WriteRecord
	if err := json.Unmarshal([]byte(firstJSON), &first); err != nil {
		return WriteRecord{}, false, fmt.Errorf("apply sandbox write %s: %w", w.IdempotencyKey, err)
	}
	replayed, _ := res[0].(int64)
	return first, replayed == 1, nil
}

// SandboxItems returns what writes added to resource in the account, newest
// first.
func (s *RedisStore) SandboxItems(ctx context.Context, a AccountRef, resource string) ([]json.RawMessage, error) {
	vals, err := s.rdb.LRange(ctx, itemsKey(a, resource), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("sandbox items %s/%s: %w", a.Integration, resource, err)
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
func (s *RedisStore) SandboxWriteLog(ctx context.Context, a AccountRef) ([]WriteRecord, error) {
	vals, err := s.rdb.LRange(ctx, writeLogKey(a), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("sandbox write log %s: %w", a.Integration, err)
	}
	out := make([]WriteRecord, len(vals))
	for i, v := range vals {
		if err := json.Unmarshal([]byte(v), &out[i]); err != nil {
			return nil, fmt.Errorf("sandbox write log %s: %w", a.Integration, err)
		}
	}
	return out, nil
}

// StartSandboxSession does a sandbox login step's work in one pipeline: the
// session count, the grant and the account's items are in three slots, so
// neither one script nor one MULTI can hold them.
func (s *RedisStore) StartSandboxSession(ctx context.Context, st SessionStart) (SessionStarted, error) {
	a := st.Account
	var count *redis.Cmd
	loads := make([]*redis.StringSliceCmd, len(st.Load))
	run := func() error {
		pipe := s.rdb.Pipeline()
		if c := st.Count; c != nil {
			count = openSessionScript.EvalSha(ctx, pipe,
				[]string{sessionsKey(a.Integration), maxSessionsKey(a.Integration)},
				c.Now.UnixMilli(), c.ExpiresAt.UnixMilli(), c.ID)
		}
		if g := st.Grant; g != nil {
			key := grantKey(g.ID)
			pipe.HSet(ctx, key, "org", g.OrgID,
				"integration", g.Integration, "username", g.Username,
				"access", g.AccessHash, "refresh", g.RefreshHash,
				"status", cmp.Or(g.Status, GrantActive), "refreshes", g.Refreshes, "issuedAt", g.IssuedAt.UnixMilli())
			pipe.PExpire(ctx, key, retention)
		}
		for i, r := range st.Load {
			loads[i] = pipe.LRange(ctx, itemsKey(a, r), 0, -1)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if luascript.IsNoScript(err) {
		// Running it all again is safe: the script did nothing, and saving
		// the same grant twice stores the same fields.
		if err = openSessionScript.Load(ctx, s.rdb).Err(); err == nil {
			err = run()
		}
	}
	if err != nil {
		return SessionStarted{}, fmt.Errorf("start sandbox session %s: %w", a.Integration, err)
	}
	var out SessionStarted
	if count != nil {
		n, err := count.Int()
		if err != nil {
			return SessionStarted{}, fmt.Errorf("start sandbox session %s: %w", a.Integration, err)
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
func (s *RedisStore) RenewSandboxSession(ctx context.Context, integration, id string, expiresAt time.Time) error {
	err := s.rdb.ZAddXX(ctx, sessionsKey(integration), redis.Z{Score: float64(expiresAt.UnixMilli()), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("renew sandbox session %s: %w", integration, err)
	}
	return nil
}

// CloseSandboxSession stops counting a session.
func (s *RedisStore) CloseSandboxSession(ctx context.Context, integration, id string) error {
	if err := s.rdb.ZRem(ctx, sessionsKey(integration), id).Err(); err != nil {
		return fmt.Errorf("close sandbox session %s: %w", integration, err)
	}
	return nil
}

// SandboxSessions returns the live session count and the recorded maximum.
func (s *RedisStore) SandboxSessions(ctx context.Context, integration string, now time.Time) (int, int, error) {
	pipe := s.rdb.Pipeline()
	live := pipe.ZCount(ctx, sessionsKey(integration), "("+strconv.FormatInt(now.UnixMilli(), 10), "+inf")
	maximum := pipe.Get(ctx, maxSessionsKey(integration))
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
func (s *RedisStore) ResetSandboxSessions(ctx context.Context, integration string, now time.Time) error {
	keys := []string{sessionsKey(integration), maxSessionsKey(integration)}
	if err := resetSessionsScript.Run(ctx, s.rdb, keys, now.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("reset sandbox sessions %s: %w", integration, err)
	}
	return nil
}

// SandboxGrant returns a grant, nil when there is none.
func (s *RedisStore) SandboxGrant(ctx context.Context, id string) (*Grant, error) {
	m, err := s.rdb.HGetAll(ctx, grantKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("sandbox grant %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return &Grant{
		ID: id, OrgID: m["org"], Integration: m["integration"], Username: m["username"],
		AccessHash: m["access"], RefreshHash: m["refresh"], Status: m["status"],
		Refreshes: atoi(m["refreshes"]), IssuedAt: unixMilli(m["issuedAt"]), RevokedAt: unixMilli(m["revokedAt"]),
	}, nil
}

// RotateSandboxGrant replaces an active grant's tokens.
func (s *RedisStore) RotateSandboxGrant(ctx context.Context, id, refreshHash, newAccessHash, newRefreshHash string) (bool, error) {
	n, err := rotateGrantScript.Run(ctx, s.rdb, []string{grantKey(id)},
		refreshHash, newAccessHash, newRefreshHash, retention.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("rotate sandbox grant %s: %w", id, err)
	}
	return n == 1, nil
}

// RevokeSandboxGrant revokes a grant.
func (s *RedisStore) RevokeSandboxGrant(ctx context.Context, id, tokenHash string, at time.Time) (bool, error) {
	n, err := revokeGrantScript.Run(ctx, s.rdb, []string{grantKey(id)}, tokenHash, at.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("revoke sandbox grant %s: %w", id, err)
	}
	return n == 1, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// unixMilli reads a time stored as Unix milliseconds; zero when unset.
func unixMilli(s string) time.Time {
	if n, _ := strconv.ParseInt(s, 10, 64); n != 0 {
		return time.UnixMilli(n)
	}
	return time.Time{}
}
