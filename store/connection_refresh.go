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

	"github.com/linkflow/linkflow"
)

// RefreshPolicy says when reading a connection refreshes its credentials.
type RefreshPolicy string

// The refresh policies of GET /v1/connections/{id}?refresh_policy=.
const (
	// RefreshAuto refreshes when the access token has expired or expires
	// within AutoRefreshWindow. The default.
	RefreshAuto RefreshPolicy = "auto"
	// RefreshForce refreshes whatever the expiry. A read that arrives while
	// another refresh of the same connection is in flight shares that
	// refresh's outcome instead of forcing one more.
	RefreshForce RefreshPolicy = "force"
	// RefreshNone never refreshes.
	RefreshNone RefreshPolicy = "none"
)

// Valid reports whether p is a known policy.
func (p RefreshPolicy) Valid() bool { return p == RefreshAuto || p == RefreshForce || p == RefreshNone }

// AutoRefreshWindow is how close to its expiry an access token is refreshed
// by the auto policy.
const AutoRefreshWindow = time.Minute

// Refresher exchanges credentials for fresh ones at the provider;
// operations.Refresher is one.
type Refresher interface {
	Refresh(ctx context.Context, creds linkflow.Credentials) (*linkflow.Credentials, error)
}

// Revoker ends credentials at the provider; operations.Revoker is one.
type Revoker interface {
	Revoke(ctx context.Context, creds linkflow.Credentials) error
}

// Defaults of the connection lock.
const (
	defaultProviderTimeout = 15 * time.Second
	// lockMargin is how much longer the lock lives than the provider call
	// it covers, so the holder commits before the lock can expire.
	lockMargin = 10 * time.Second
)

// ReadOptions say how ReadConnection treats a connection's credentials.
type ReadOptions struct {
	// Policy is when to refresh. Default RefreshAuto.
	Policy RefreshPolicy
	// Refresher returns the refresher of an integration, nil when its
	// provider cannot refresh. A nil func means none can.
	Refresher func(integrationID string) Refresher
	// OnWait, when set, is called once when the read starts waiting for a
	// refresh another request holds the lock for.
	OnWait func()
	// ProviderTimeout bounds the provider call; the lock lives
	// ProviderTimeout + 10s. Default 15s.
	ProviderTimeout time.Duration
	// Wait bounds how long a read waits for another request's refresh before
	// it gives up with SERVICE_UNAVAILABLE. Default: the lock's lifetime
	// plus 5s, so a read outlives a holder that died.
	Wait time.Duration
}

func (o *ReadOptions) defaults() {
	o.Policy = cmp.Or(o.Policy, RefreshAuto)
	o.ProviderTimeout = cmp.Or(o.ProviderTimeout, defaultProviderTimeout)
	o.Wait = cmp.Or(o.Wait, o.ProviderTimeout+lockMargin+5*time.Second)
}

func (o *ReadOptions) refresher(integration string) Refresher {
	if o.Refresher == nil {
		return nil
	}
	return o.Refresher(integration)
}

// ConnectionRead is the outcome of ReadConnection.
type ConnectionRead struct {
	// Conn is the connection after any refresh, credentials opened.
	Conn *linkflow.Connection
	// Refreshed says this read called the provider; Shared that it took the
	// outcome of a refresh another read made while it waited.
	Refreshed bool
	Shared    bool
	// RefreshErr is the provider's error when this read's refresh failed
	// (the connection is then in status error).
	RefreshErr error
	// Event is the status change event this read recorded, to publish; nil
	// when the status did not change between healthy and error.
	Event *linkflow.Finished
}

// ReadConnection returns a connection with its credentials opened,
// refreshing them first when the policy says so. Refreshes of one connection
// are serialised by a lock in Redis whose fencing token guards the commit:
// one read calls the provider, reads that arrive meanwhile wait and share
// its outcome, and a refresher that lost its lock cannot overwrite. A
// failed refresh puts the connection in status error; a good one puts it
// back to healthy; each change records its connection.* event in the same
// step.
//
// A forced refresh of a revoked or disabled connection, or of one without
// credentials, is CONFLICT_ERROR; of a provider that cannot refresh,
// UNPROCESSABLE_ENTITY. The auto policy leaves those alone.
func (s *Store) ReadConnection(ctx context.Context, org, id string, o ReadOptions) (*ConnectionRead, error) {
	o.defaults()
	st, err := s.connState(ctx, org, id)
	if err != nil {
		return nil, err
	}
	need, err := s.needsRefresh(st.conn, &o)
	if err != nil || !need {
		return &ConnectionRead{Conn: st.conn}, err
	}
	return s.refresh(ctx, org, id, st.refreshes, &o)
}

func (s *Store) needsRefresh(c *linkflow.Connection, o *ReadOptions) (bool, error) {
	force := o.Policy == RefreshForce
	if o.Policy == RefreshNone {
		return false, nil
	}
	var why *linkflow.Error
	switch {
	case c.Status == linkflow.ConnRevoked:
		why = linkflow.Errorf(linkflow.EConflict, "The connection was revoked; it has no credentials to refresh.")
	case c.Disabled:
		why = linkflow.Errorf(linkflow.EConflict, "The connection is disabled; enable it to refresh its credentials.")
	case o.refresher(c.IntegrationID) == nil:
		why = linkflow.Errorf(linkflow.EUnprocessable, "The %s integration cannot refresh credentials.", c.IntegrationID)
	case c.Credentials == nil:
		why = linkflow.Errorf(linkflow.EConflict, "The connection has no credentials to refresh.")
	}
	if why != nil {
		if force {
			return false, why
		}
		return false, nil
	}
	if force {
		return true, nil
	}
	exp := c.Credentials.ExpiresAt
	return !exp.IsZero() && exp.Sub(s.now()) <= AutoRefreshWindow, nil
}

// refresh takes the lock, or waits for its holder and shares the outcome.
// seen is the refresh generation the read started from: any refresh
// committed after it is the one this read asked for.
func (s *Store) refresh(ctx context.Context, org, id, seen string, o *ReadOptions) (*ConnectionRead, error) {
	deadline := time.Now().Add(o.Wait)
	waited := false
	for {
		token, st, err := s.lockConnection(ctx, org, id, o.ProviderTimeout+lockMargin)
		if err != nil {
			return nil, err
		}
		if token != "" {
			if st.refreshes != seen {
				s.unlockConnection(ctx, org, id, token)
				return &ConnectionRead{Conn: st.conn, Shared: true}, nil
			}
			need, err := s.needsRefresh(st.conn, o)
			if err != nil || !need {
				s.unlockConnection(ctx, org, id, token)
				return &ConnectionRead{Conn: st.conn}, err
			}
			return s.refreshLocked(ctx, org, id, token, st, o)
		}
		if !waited && o.OnWait != nil {
			o.OnWait()
		}
		waited = true
		moved, err := s.waitUnlocked(ctx, org, id, &seen, deadline)
		if err != nil {
			return nil, err
		}
		if moved {
			st, err := s.connState(ctx, org, id)
			if err != nil {
				return nil, err
			}
			return &ConnectionRead{Conn: st.conn, Shared: true}, nil
		}
		// The holder let go without committing (it failed or died): try
		// to take the lock again.
	}
}

// errLockWait is what a read that waited too long for the lock gets.
func errLockWait() error {
	e := linkflow.Errorf(linkflow.EServiceUnavailable, "The connection is busy with another refresh; try again.")
	e.RetryAfter = 1
	return e
}

// waitUnlocked polls, with a growing pause, until the lock is free or, when
// seen is given, the connection's refresh generation moves past *seen
// (moved).
func (s *Store) waitUnlocked(ctx context.Context, org, id string, seen *string, deadline time.Time) (moved bool, err error) {
	pause := 5 * time.Millisecond
	for {
		if time.Now().After(deadline) {
			return false, errLockWait()
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
		pause = min(pause*2, 100*time.Millisecond)
		pipe := s.rdb.Pipeline()
		gen := pipe.HGet(ctx, connKey(org, id), cRefreshes)
		held := pipe.Exists(ctx, connLockKey(org, id))
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return false, err
		}
		if seen != nil && gen.Val() != *seen {
			return true, nil
		}
		if held.Val() == 0 {
			return false, nil
		}
	}
}

// lockConnection takes the connection's lock when free and returns its
// fencing token and the connection under the lock; token "" means another
// holds it.
func (s *Store) lockConnection(ctx context.Context, org, id string, ttl time.Duration) (string, *connState, error) {
	res, err := connLockScript.Run(ctx, s.rdb, []string{connKey(org, id), connLockKey(org, id), connLinksKey(org, id)},
		ttl.Milliseconds(), ConnectionLinkIDs).Result()
	if err != nil {
		return "", nil, fmt.Errorf("lock connection %s: %w", id, err)
	}
	arr, ok := res.([]any)
	if !ok || len(arr) == 0 {
		return "", nil, fmt.Errorf("lock connection %s: unexpected reply %v", id, res)
	}
	switch arr[0] {
	case "missing":
		return "", nil, linkflow.ErrNotFound
	case "busy":
		return "", nil, nil
	case "ok":
	default:
		return "", nil, fmt.Errorf("lock connection %s: unexpected reply %v", id, arr[0])
	}
	token, _ := arr[1].(string)
	var links []string
	if ls, ok := arr[3].([]any); ok {
		for _, l := range ls {
			if str, ok := l.(string); ok {
				links = append(links, str)
			}
		}
	}
	st, err := s.stateFromHash(id, pairsToMap(arr[2]), links)
	if err != nil {
		s.unlockConnection(ctx, org, id, token)
		return "", nil, err
	}
	return token, st, nil
}

func (s *Store) unlockConnection(ctx context.Context, org, id, token string) {
	// Best effort: a lock not released expires with its TTL.
	_ = connUnlockScript.Run(context.WithoutCancel(ctx), s.rdb, []string{connLockKey(org, id)}, token).Err()
}

// maxStatusMessage bounds the provider error kept as a status message.
const maxStatusMessage = 500

// refreshLocked calls the provider while holding the lock and commits the
// outcome. The provider call and the commit do not stop when the caller
// goes away: a refresh token the provider already rotated must be kept.
func (s *Store) refreshLocked(ctx context.Context, org, id, token string, st *connState, o *ReadOptions) (*ConnectionRead, error) {
	ctx = context.WithoutCancel(ctx)
	c := *st.conn
	pctx, cancel := context.WithTimeout(ctx, o.ProviderTimeout)
	next, perr := o.refresher(c.IntegrationID).Refresh(pctx, *c.Credentials)
	cancel()
	if perr == nil && (next == nil || next.AccessToken == "") {
		perr = errors.New("the provider returned no credentials")
	}
	now := s.now()
	c.UpdatedAt = now
	outcome, value := "ok", ""
	if perr == nil {
		if next.RefreshToken == "" {
			// Providers that do not rotate refresh tokens keep the old one.
			next.RefreshToken = c.Credentials.RefreshToken
		}
		b, err := json.Marshal(next)
		if err != nil {
			s.unlockConnection(ctx, org, id, token)
			return nil, err
		}
		value = s.keys.Seal(b, credentialsAAD(id))
		c.Credentials, c.Status, c.StatusMessage, c.LastRefreshedAt = next, linkflow.ConnHealthy, "", now
	} else {
		outcome = "error"
		value = "Refreshing the credentials failed: " + perr.Error()
		if len(value) > maxStatusMessage {
			value = value[:maxStatusMessage]
		}
		c.Status, c.StatusMessage = linkflow.ConnError, value
	}
	ev, body, err := linkflow.NewConnectionEvent(timeOrderedID("evt_"), &c, now)
	if err != nil {
		s.unlockConnection(ctx, org, id, token)
		return nil, err
	}
	res, err := connRefreshScript.Run(ctx, s.rdb,
		[]string{connKey(org, id), connLockKey(org, id), eventsKey(org), outboxKey(org)},
		token, st.lastLink, outcome, ms(now), value, ev.ID, ev.Type, string(body),
		strconv.FormatInt(ms(now.Add(-s.cfg.EventRetention)), 10)).Result()
	if err != nil {
		// The outcome is unknown; the lock expires on its own.
		return nil, fmt.Errorf("commit refresh of %s: %w", id, err)
	}
	out, err := replyStrings(res)
	if err != nil {
		return nil, err
	}
	switch out[0] {
	case "ok":
	case "missing":
		return nil, linkflow.ErrNotFound
	default:
		// fenced, superseded, revoked: the connection keeps what it has and
		// what this refresh obtained is dropped, not revoked: providers that
		// revoke a whole grant would take the kept credentials with it.
		after, err := s.connState(ctx, org, id)
		if err != nil {
			return nil, err
		}
		return &ConnectionRead{Conn: after.conn}, nil
	}
	after, err := s.connState(ctx, org, id)
	if err != nil {
		return nil, err
	}
	read := &ConnectionRead{Conn: after.conn, Refreshed: true, RefreshErr: perr}
	if out[1] != "" {
		read.Event = &linkflow.Finished{OrgID: org, EventID: ev.ID, EventType: ev.Type, StreamID: out[1], ConnectionID: id}
	}
	return read, nil
}

// Revocation is the outcome of DeleteConnection.
type Revocation struct {
	// Conn is the tombstone: status revoked, no credentials.
	Conn *linkflow.Connection
	// AtProvider says the provider confirmed the revocation.
	AtProvider bool
	// ProviderErr is why the provider did not confirm, when it was asked.
	ProviderErr error
	// Already says the connection was revoked before this call.
	Already bool
}

// DeleteConnection revokes a connection's credentials at the provider (when
// revoker, given the integration, returns a Revoker) and then, whatever the
// provider answered, deletes the sealed credentials and keeps the record as
// a tombstone with status revoked. It takes the refresh lock first, so a
// refresh in flight finishes before and none runs during. Deleting a revoked
// connection again changes nothing.
func (s *Store) DeleteConnection(ctx context.Context, org, id string, revoker func(integrationID string) Revoker) (*Revocation, error) {
	o := ReadOptions{}
	o.defaults()
	deadline := time.Now().Add(o.Wait)
	ctx = context.WithoutCancel(ctx)
	for fenced := 0; fenced < 3; {
		token, st, err := s.lockConnection(ctx, org, id, o.ProviderTimeout+lockMargin)
		if err != nil {
			return nil, err
		}
		if token == "" {
			if _, err := s.waitUnlocked(ctx, org, id, nil, deadline); err != nil {
				return nil, err
			}
			continue
		}
		c := st.conn
		if c.Status == linkflow.ConnRevoked {
			s.unlockConnection(ctx, org, id, token)
			return &Revocation{Conn: c, AtProvider: c.RevokedAtProvider, Already: true}, nil
		}
		rev := &Revocation{}
		msg := "Deleted through the API."
		var r Revoker
		if revoker != nil {
			r = revoker(c.IntegrationID)
		}
		switch {
		case c.Credentials == nil:
			msg = "Deleted through the API; it held no credentials to revoke."
		case r == nil:
			msg = "Deleted through the API; the provider offers no revocation, so the credentials were only deleted here."
		default:
			rctx, cancel := context.WithTimeout(ctx, o.ProviderTimeout)
			rev.ProviderErr = r.Revoke(rctx, *c.Credentials)
			cancel()
			rev.AtProvider = rev.ProviderErr == nil
			if rev.ProviderErr != nil {
				msg = "Deleted through the API; the provider did not confirm the revocation: " + rev.ProviderErr.Error()
				if len(msg) > maxStatusMessage {
					msg = msg[:maxStatusMessage]
				}
			}
		}
		atProvider := "0"
		if rev.AtProvider {
			atProvider = "1"
		}
		res, err := connRevokeScript.Run(ctx, s.rdb, []string{connKey(org, id), connLockKey(org, id)},
			token, ms(s.now()), atProvider, msg, st.lastLink).Text()
		if err != nil {
			return nil, fmt.Errorf("revoke connection %s: %w", id, err)
		}
		switch res {
		case "ok":
		case "missing":
			return nil, linkflow.ErrNotFound
		case "fenced", "superseded":
			// The lock expired during a slow provider call, or a link
			// renewed the connection meanwhile: do it again under a new
			// lock (revoking twice is harmless).
			fenced++
			continue
		default:
			return nil, fmt.Errorf("revoke connection %s: unexpected reply %q", id, res)
		}
		after, err := s.connState(ctx, org, id)
		if err != nil {
			return nil, err
		}
		rev.Conn = after.conn
		return rev, nil
	}
	return nil, errLockWait()
}
