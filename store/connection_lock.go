package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/linkflow/linkflow"
)

// The primitives connection refresh and revocation are made of (package
// connections calls the provider between them): a lock per connection whose
// fencing token guards the commit, a way to watch it, and the commits.

// Connection hash fields kept by the lock and commit scripts.
const (
	cRefreshes         = "refreshes" // refresh outcomes committed, the generation waiters watch
	cRevokedAt         = "revokedAt"
	cRevokedAtProvider = "revokedAtProvider"
)

var (
	connLockScript    = script("conn_lock")
	connApplyScript   = script("conn_apply")
	connUnlockScript  = script("conn_unlock")
	connRefreshScript = script("conn_refresh")
	connRevokeScript  = script("conn_revoke")
)

// LockConnection takes a connection's lock for ttl when nobody holds it and
// returns its fencing token and the connection under the lock, credentials
// opened; when another holds it, the lock has no token, only how many
// refreshes the connection committed.
func (s *Store) LockConnection(ctx context.Context, org, id string, ttl time.Duration) (*linkflow.ConnectionLock, error) {
	if !validID(id) || !validID(org) {
		return nil, linkflow.ErrNotFound
	}
	res, err := connLockScript.Run(ctx, s.rdb, []string{s.k.conn(id), s.k.connLock(id), s.k.connLinks(id)},
		ttl.Milliseconds(), ConnectionLinkIDs, org, linkflow.NewLeaseToken()).Result()
	if err != nil {
		return nil, fmt.Errorf("lock connection %s: %w", id, err)
	}
	arr, ok := res.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("lock connection %s: unexpected reply %v", id, res)
	}
	switch arr[0] {
	case "missing":
		return nil, linkflow.ErrNotFound
	case "busy":
		gen, _ := arr[1].(string)
		return &linkflow.ConnectionLock{Refreshes: atoi(gen)}, nil
	case "ok":
	default:
		return nil, fmt.Errorf("lock connection %s: unexpected reply %v", id, arr[0])
	}
	token, _ := arr[1].(string)
	links, _ := replyStrings(arr[3])
	c, err := s.connectionFromHash(id, pairsToMap(arr[2]), links)
	if err != nil {
		_ = s.UnlockConnection(ctx, org, id, token)
		return nil, err
	}
	return &linkflow.ConnectionLock{Token: token, Refreshes: c.Refreshes, Conn: c}, nil
}

// UnlockConnection releases a connection's lock if token still holds it.
func (s *Store) UnlockConnection(ctx context.Context, org, id, token string) error {
	return connUnlockScript.Run(ctx, s.rdb, []string{s.k.connLock(id)}, token).Err()
}

// CommitRefresh commits a refresh's outcome and releases the lock (unless
// it answers linkflow.ErrChanged), fenced by its token, in one step: fresh
// credentials put the connection back to healthy, a failure puts it in
// error, and a change between the two records its event (and its message
// in the outbox). It returns the event's message
// when one was recorded; linkflow.ErrFenced when the lock expired, a link
// renewed the connection meanwhile or it was revoked (the connection keeps
// what it has); ErrNotFound when it is gone; linkflow.ErrChanged, the lock
// kept and nothing written, when an event is due and the connection is no
// longer at c.Version.
func (s *Store) CommitRefresh(ctx context.Context, org, id string, c linkflow.RefreshCommit) (*linkflow.Message, error) {
	outcome, value := "error", c.StatusMessage
	if c.Credentials != nil {
		b, err := json.Marshal(c.Credentials)
		if err != nil {
			return nil, err
		}
		outcome, value = "ok", s.keys.Seal(b, credentialsAAD(id))
	}
	if shardOf(c.EventID) != shardOf(id) {
		return nil, fmt.Errorf("commit refresh of %s: event %s is not in the connection's shard", id, c.EventID)
	}
	shard := shardOf(id)
	version := ""
	if c.Version != 0 {
		version = strconv.FormatInt(c.Version, 10)
	}
	out, err := s.runStrings(ctx, connRefreshScript, "commit refresh of "+id,
		[]string{s.k.conn(id), s.k.connLock(id), s.k.outbox(shard), s.k.outboxMessages(shard), s.k.event(c.EventID)},
		c.Token, c.LastLinkID, outcome, ms(c.At), value, c.EventID, c.EventType, string(c.EventBody),
		s.cfg.EventRetention.Milliseconds(), encodeMessage(c.Message), version)
	if err != nil {
		return nil, err
	}
	switch out[0] {
	case "ok":
		if out[1] != "1" {
			return nil, nil
		}
		m := c.Message
		m.Outbox = outboxName(shard)
		return &m, nil
	case "missing":
		return nil, linkflow.ErrNotFound
	case "fenced", "superseded", "revoked":
		return nil, linkflow.ErrFenced
	case "changed":
		return nil, linkflow.ErrChanged
	}
	return nil, fmt.Errorf("commit refresh of %s: unexpected reply %q", id, out[0])
}

// CommitRevoke turns a connection into a tombstone and releases the lock,
// fenced by its token: its credentials go, the record stays, revoked. It
// returns linkflow.ErrFenced when the lock expired or a link renewed the
// connection meanwhile (its new credentials were not revoked: start over),
// ErrNotFound when it is gone.
func (s *Store) CommitRevoke(ctx context.Context, org, id string, c linkflow.RevokeCommit) error {
	atProvider := "0"
	if c.AtProvider {
		atProvider = "1"
	}
	res, err := connRevokeScript.Run(ctx, s.rdb, []string{s.k.conn(id), s.k.connLock(id)},
		c.Token, ms(c.At), atProvider, c.StatusMessage, c.LastLinkID).Text()
	if err != nil {
		return fmt.Errorf("revoke connection %s: %w", id, err)
	}
	switch res {
	case "ok":
		return nil
	case "missing":
		return linkflow.ErrNotFound
	case "fenced", "superseded":
		return linkflow.ErrFenced
	}
	return fmt.Errorf("revoke connection %s: unexpected reply %q", id, res)
}
