package connections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/outbox"
)

// Store is what the service needs from the store.
type Store interface {
	Connection(ctx context.Context, org, id string) (*linkflow.Connection, error)
	LockConnection(ctx context.Context, org, id string, ttl time.Duration) (*linkflow.ConnectionLock, error)
	UnlockConnection(ctx context.Context, org, id, token string) error
	CommitRefresh(ctx context.Context, org, id string, c linkflow.RefreshCommit) (*linkflow.Message, error)
	CommitRevoke(ctx context.Context, org, id string, c linkflow.RevokeCommit) error
}

// Providers finds an integration's provider.
type Providers interface {
	Provider(integration string) (operations.Provider, bool)
}

// Config configures a Service. Zero fields take the documented defaults.
type Config struct {
	// Store and Providers are required.
	Store     Store
	Providers Providers
	// Clock is the clock of expiries and of waiting. Default the real one.
	Clock clockwork.Clock
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// ProviderTimeout bounds a provider call; the lock lives
	// ProviderTimeout + 10s. Default 15s.
	ProviderTimeout time.Duration
	// Wait bounds how long a read waits for another request's refresh
	// before it gives up with ErrBusy. Default: the lock's lifetime plus 5s,
	// so a read outlives a holder that died.
	Wait time.Duration
	// AutoRefreshWindow is how close to its expiry an access token is
	// refreshed by the auto policy. Default 1 minute.
	AutoRefreshWindow time.Duration
}

// lockMargin is how much longer the lock lives than the provider call it
// covers, so the holder commits before the lock can expire.
const lockMargin = 10 * time.Second

// maxStatusMessage bounds the provider error kept as a status message.
const maxStatusMessage = 500

// Service refreshes and revokes connections. It is safe for concurrent use.
type Service struct {
	cfg Config
	log *zap.Logger

	// held counts the provider calls under a connection's lock and their
	// commits; stopped, under mu, refuses new ones once Stop began.
	mu      sync.RWMutex
	stopped bool
	held    sync.WaitGroup
}

// ErrStopping: the process is stopping and takes no new provider call.
var ErrStopping error = stoppingError{}

type stoppingError struct{}

func (stoppingError) Error() string     { return "connections: the process is stopping" }
func (stoppingError) Unavailable() bool { return true }

// Start does nothing: the service runs in its callers' requests. It is there
// for Stop, which a process must run after its API stopped taking requests
// and before it closes Redis.
func (s *Service) Start(context.Context) error { return nil }

// Stop waits for the provider calls under a connection's lock and their
// commits, and refuses new ones (ErrStopping). A refresh token the provider
// already rotated, or a revocation it already made, is so recorded before
// the process closes Redis, even when the request that asked for it was cut
// off. It waits at most ProviderTimeout + 10s (the lock's lifetime, which
// bounds each commit's retries). It is safe to call twice, and before Start.
func (s *Service) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.held.Wait()
}

// hold counts a provider call about to be made under a connection's lock,
// unless the service is stopping. Its caller calls s.held.Done when the
// commit that follows has run.
func (s *Service) hold() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stopped {
		return false
	}
	s.held.Add(1)
	return true
}

// New returns a service with cfg's defaults filled in.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Providers == nil {
		return nil, errors.New("connections: Store and Providers are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	cfg.ProviderTimeout = cmp.Or(cfg.ProviderTimeout, 15*time.Second)
	cfg.Wait = cmp.Or(cfg.Wait, cfg.ProviderTimeout+lockMargin+5*time.Second)
	cfg.AutoRefreshWindow = cmp.Or(cfg.AutoRefreshWindow, time.Minute)
	return &Service{cfg: cfg, log: cfg.Logger.Named("connections")}, nil
}

// Errors the service answers with; the API turns them into codes.
var (
	// ErrBusy: the connection is busy with another refresh for longer than
	// a read waits, or a delete was overtaken three times (its lock lapsed
	// during the provider's call, or links renewed the connection).
	ErrBusy = errors.New("the connection is busy with another refresh or change")
	// ErrCannotRefresh: a forced refresh of a connection that cannot be
	// refreshed now (revoked, disabled, without credentials).
	ErrCannotRefresh = errors.New("the connection cannot be refreshed")
	// ErrNoRefresh: a forced refresh of a provider that cannot refresh.
	ErrNoRefresh = errors.New("the provider cannot refresh credentials")
)

// Read is the outcome of Service.Read.
type Read struct {
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
	Event *linkflow.Message
}

// Read returns a connection with its credentials opened, refreshing them
// first when policy says so (RefreshAuto when empty). onWait, when not nil,
// is called once when the read starts waiting for another's refresh.
//
// A forced refresh of a revoked, disabled or credential-less connection is
// ErrCannotRefresh; of a provider that cannot refresh, ErrNoRefresh; the
// auto policy leaves those alone.
func (s *Service) Read(ctx context.Context, org, id string, policy linkflow.RefreshPolicy, onWait func()) (*Read, error) {
	policy = cmp.Or(policy, linkflow.RefreshAuto)
	c, err := s.cfg.Store.Connection(ctx, org, id)
	if err != nil {
		return nil, err
	}
	need, err := s.needsRefresh(c, policy)
	if err != nil || !need {
		return &Read{Conn: c}, err
	}
	return s.refresh(ctx, org, id, c.Refreshes, policy, onWait)
}

func (s *Service) refresher(integration string) operations.Refresher {
	p, ok := s.cfg.Providers.Provider(integration)
	if !ok {
		return nil
	}
	rf, _ := p.(operations.Refresher)
	return rf
}

func (s *Service) needsRefresh(c *linkflow.Connection, policy linkflow.RefreshPolicy) (bool, error) {
	if policy == linkflow.RefreshNone {
		return false, nil
	}
	force := policy == linkflow.RefreshForce
	var why error
	switch {
	case c.Status == linkflow.ConnRevoked:
		why = fmt.Errorf("%w: it was revoked and has no credentials", ErrCannotRefresh)
	case c.Disabled:
		why = fmt.Errorf("%w: it is disabled; enable it to refresh its credentials", ErrCannotRefresh)
	case s.refresher(c.IntegrationID) == nil:
		why = fmt.Errorf("%w (%s)", ErrNoRefresh, c.IntegrationID)
	case c.Unreadable && c.UnknownKey != "":
		why = UnknownKeyError(c)
	case c.Unreadable:
		why = fmt.Errorf("%w: its credentials cannot be opened (damaged); a new link with this connectionId renews them", ErrCannotRefresh)
	case c.Credentials == nil:
		why = fmt.Errorf("%w: it has no credentials", ErrCannotRefresh)
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
	return !exp.IsZero() && exp.Sub(s.cfg.Clock.Now()) <= s.cfg.AutoRefreshWindow, nil
}

// refresh takes the lock, or waits for its holder and shares the outcome.
// seen is the refresh generation the read started from: any refresh
// committed after it is the one this read asked for.
func (s *Service) refresh(ctx context.Context, org, id string, seen int64, policy linkflow.RefreshPolicy, onWait func()) (*Read, error) {
	w := s.newWait()
	for {
		until := s.lockedUntil()
		lock, err := s.cfg.Store.LockConnection(ctx, org, id, s.cfg.ProviderTimeout+lockMargin)
		if err != nil {
			return nil, err
		}
		switch {
		case lock.Token != "" && lock.Refreshes != seen:
			s.unlock(ctx, org, id, lock.Token)
			return &Read{Conn: lock.Conn, Shared: true}, nil
		case lock.Token != "":
			need, err := s.needsRefresh(lock.Conn, policy)
			if err != nil || !need {
				s.unlock(ctx, org, id, lock.Token)
				return &Read{Conn: lock.Conn}, err
			}
			if !s.hold() {
				s.unlock(ctx, org, id, lock.Token)
				return nil, ErrStopping
			}
			defer s.held.Done()
			return s.refreshLocked(ctx, org, id, lock.Token, until, lock.Conn)
		case lock.Refreshes != seen:
			// The holder committed a refresh while this read waited.
			c, err := s.cfg.Store.Connection(ctx, org, id)
			if err != nil {
				return nil, err
			}
			return &Read{Conn: c, Shared: true}, nil
		}
		if w.pauses == 0 && onWait != nil {
			onWait()
		}
		// Another holds the lock: wait, then ask again; a holder that lets
		// go without committing (it failed or died) leaves the lock to take.
		if err := w.pause(ctx); err != nil {
			return nil, err
		}
	}
}

// wait paces the polling of a busy lock: a growing pause, up to Wait in all.
type wait struct {
	clock    clockwork.Clock
	deadline time.Time
	next     time.Duration
	pauses   int
}

func (s *Service) newWait() *wait {
	return &wait{clock: s.cfg.Clock, deadline: s.cfg.Clock.Now().Add(s.cfg.Wait), next: 5 * time.Millisecond}
}

// pause waits before the next try, or answers ErrBusy when the wait is over.
func (w *wait) pause(ctx context.Context) error {
	if w.clock.Now().After(w.deadline) {
		return ErrBusy
	}
	t := w.clock.NewTimer(w.next)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
	}
	w.next = min(w.next*2, 100*time.Millisecond)
	w.pauses++
	return nil
}

// lockedUntil is when a lock taken now expires, less a second for the
// commit's own round trip. It is on the real clock, as Redis's TTL is.
func (s *Service) lockedUntil() time.Time {
	return time.Now().Add(s.cfg.ProviderTimeout + lockMargin - time.Second)
}

// commitLocked runs the commit that follows a provider call nobody can take
// back (a rotated refresh token, a revocation). A Redis that does not
// answer is asked again, 100 ms apart slowing to a second, while the lock
// holds: past until, another holder may begin with what this one replaced.
func (s *Service) commitLocked(until time.Time, commit func() error) error {
	pause := 100 * time.Millisecond
	for {
		err := commit()
		if err == nil || errors.Is(err, linkflow.ErrFenced) || errors.Is(err, linkflow.ErrNotFound) ||
			!time.Now().Add(pause).Before(until) {
			return err
		}
		s.log.Warn("commit under the connection's lock; asking Redis again", zap.Error(err))
		time.Sleep(pause) // pacing retries against Redis, not waiting for an event
		pause = min(pause*2, time.Second)
	}
}

func (s *Service) unlock(ctx context.Context, org, id, token string) {
	// Best effort: a lock not released expires with its TTL.
	if err := s.cfg.Store.UnlockConnection(context.WithoutCancel(ctx), org, id, token); err != nil {
		s.log.Debug("unlock connection", zap.String("connection_id", id), zap.Error(err))
	}
}

// refreshLocked calls the provider while holding the lock and commits the
// outcome. The provider call and the commit do not stop when the caller
// goes away: a refresh token the provider already rotated must be kept.
func (s *Service) refreshLocked(ctx context.Context, org, id, token string, until time.Time, c *linkflow.Connection) (*Read, error) {
	ctx = context.WithoutCancel(ctx)
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProviderTimeout)
	next, perr := s.refresher(c.IntegrationID).Refresh(pctx, *c.Credentials)
	cancel()
	if perr == nil && (next == nil || next.AccessToken == "") {
		perr = errors.New("the provider returned no credentials")
	}
	commit := linkflow.RefreshCommit{Token: token, LastLinkID: c.LastLinkID, At: s.cfg.Clock.Now()}
	if perr == nil {
		if next.RefreshToken == "" {
			// Providers that do not rotate refresh tokens keep the old one.
			next.RefreshToken = c.Credentials.RefreshToken
		}
		commit.Credentials = next
	} else {
		commit.StatusMessage = clip("Refreshing the credentials failed: "+perr.Error(), maxStatusMessage)
	}
	if err := describeRefresh(&commit, org, c); err != nil {
		s.unlock(ctx, org, id, token)
		return nil, err
	}
	var msg *linkflow.Message
	err := s.commitLocked(until, func() error {
		var err error
		if msg, err = s.cfg.Store.CommitRefresh(ctx, org, id, commit); !errors.Is(err, linkflow.ErrChanged) {
			return err
		}
		// The connection changed during the provider's call (a PATCH of its
		// metadata, say): its event is built again from what it is now,
		// once, while the lock holds. Then it is committed whatever changed
		// since: a body never holds back what the provider rotated.
		if cur, err := s.cfg.Store.Connection(ctx, org, id); err == nil && time.Now().Before(until) {
			_ = describeRefresh(&commit, org, cur) // a body that cannot be built again keeps the last one
		}
		commit.Version = 0
		msg, err = s.cfg.Store.CommitRefresh(ctx, org, id, commit)
		return err
	})
	switch {
	case errors.Is(err, linkflow.ErrFenced):
		// The lock expired, a link renewed the connection or it was revoked
		// meanwhile: the connection keeps what it has, and what this refresh
		// obtained is dropped, not revoked: providers that revoke a whole
		// grant would take the kept credentials with it.
		switch {
		case perr == nil && time.Now().After(until):
			// The provider took longer than the lock: if it rotated the
			// refresh token, the one kept may no longer work.
			s.log.Error("refresh outlived its lock: the credentials it obtained are dropped, and a refresh token the provider rotated may be lost",
				zap.String("connection_id", id))
		case perr == nil:
			s.log.Info("refresh superseded (a link renewed the connection, or it was revoked): the credentials it obtained are dropped",
				zap.String("connection_id", id))
		}
		kept, err := s.cfg.Store.Connection(ctx, org, id)
		if err != nil {
			return nil, err
		}
		return &Read{Conn: kept}, nil
	case err != nil:
		// Redis did not answer until the lock was about to expire: the
		// outcome is unknown, and the lock expires on its own.
		s.log.Error("commit refresh: Redis did not answer while the lock held; a token the provider rotated may be lost",
			zap.String("connection_id", id), zap.Error(err))
		return nil, err
	}
	fresh, err := s.cfg.Store.Connection(ctx, org, id)
	if err != nil {
		return nil, err
	}
	return &Read{Conn: fresh, Refreshed: true, RefreshErr: perr, Event: msg}, nil
}

// describeRefresh sets commit's event (recorded when the connection's status
// changes between healthy and error): c as commit leaves it, built from c's
// version.
func describeRefresh(commit *linkflow.RefreshCommit, org string, c *linkflow.Connection) error {
	after := *c
	after.UpdatedAt = commit.At
	if commit.Credentials != nil {
		after.Credentials, after.Status, after.StatusMessage, after.LastRefreshedAt = commit.Credentials, linkflow.ConnHealthy, "", commit.At
	} else {
		after.Status, after.StatusMessage = linkflow.ConnError, commit.StatusMessage
	}
	ev, body, err := linkflow.NewConnectionEvent(outbox.NewEventIDFor(c.ID), &after, commit.At)
	if err != nil {
		return err
	}
	commit.EventID, commit.EventType, commit.EventBody, commit.Version = ev.ID, ev.Type, body, c.Version
	commit.Message = outbox.EventMessage(org, ev.ID, ev.Type)
	return nil
}

// UnknownKeyError is why a connection whose credentials are sealed with an
// encryption key this process is not given cannot be refreshed, shown or
// deleted here: linkflow.ErrUnknownKey, naming the key.
func UnknownKeyError(c *linkflow.Connection) error {
	return fmt.Errorf("%w: the credentials of connection %s are sealed with key %q", linkflow.ErrUnknownKey, c.ID, c.UnknownKey)
}

// Revocation is the outcome of Delete.
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

// Delete revokes a connection's credentials at the provider (when it can
// revoke) and then, whatever the provider answered, deletes the sealed
// credentials and keeps the record as a tombstone with status revoked. It
// takes the refresh lock first, so a refresh in flight finishes before and
// none runs during. Deleting a revoked connection again changes nothing.
func (s *Service) Delete(ctx context.Context, org, id string) (*Revocation, error) {
	w := s.newWait()
	ctx = context.WithoutCancel(ctx)
	// committed is when this call's last fenced commit stamped the
	// revocation: fenced after its reply was lost, it may have been applied.
	var committed time.Time
	var providerErr error // what the provider answered that commit's revocation
	for fenced := 0; fenced < 3; {
		until := s.lockedUntil()
		lock, err := s.cfg.Store.LockConnection(ctx, org, id, s.cfg.ProviderTimeout+lockMargin)
		if err != nil {
			return nil, err
		}
		if lock.Token == "" {
			if err := w.pause(ctx); err != nil {
				return nil, err
			}
			continue
		}
		token, c := lock.Token, lock.Conn
		if c.Status == linkflow.ConnRevoked {
			s.unlock(ctx, org, id, token)
			return revoked(c, committed, providerErr), nil
		}
		if c.Unreadable && c.UnknownKey != "" {
			// A process given the key could revoke them at the provider:
			// deleting them here would leave the grant live for good.
			s.unlock(ctx, org, id, token)
			return nil, UnknownKeyError(c)
		}
		if !s.hold() {
			s.unlock(ctx, org, id, token)
			return nil, ErrStopping
		}
		rev := &Revocation{}
		msg := "Deleted through the API."
		var rv operations.Revoker
		if p, ok := s.cfg.Providers.Provider(c.IntegrationID); ok {
			rv, _ = p.(operations.Revoker)
		}
		switch {
		case c.Unreadable:
			msg = "Deleted through the API; its credentials were damaged and could not be opened, so they were deleted " +
				"here without being revoked at the provider."
		case c.Credentials == nil:
			msg = "Deleted through the API; it held no credentials to revoke."
		case rv == nil:
			msg = "Deleted through the API; the provider offers no revocation, so the credentials were only deleted here."
		default:
			rctx, cancel := context.WithTimeout(ctx, s.cfg.ProviderTimeout)
			rev.ProviderErr = rv.Revoke(rctx, *c.Credentials)
			cancel()
			rev.AtProvider = rev.ProviderErr == nil
			if rev.ProviderErr != nil {
				msg = clip("Deleted through the API; the provider did not confirm the revocation: "+rev.ProviderErr.Error(), maxStatusMessage)
			}
		}
		commit := linkflow.RevokeCommit{Token: token, LastLinkID: c.LastLinkID, At: s.cfg.Clock.Now(),
			AtProvider: rev.AtProvider, StatusMessage: msg}
		err = s.commitLocked(until, func() error { return s.cfg.Store.CommitRevoke(ctx, org, id, commit) })
		s.held.Done()
		if errors.Is(err, linkflow.ErrFenced) {
			// The lock expired during a slow provider call, or a link renewed
			// the connection meanwhile: do it again under a new lock (revoking
			// twice is harmless). Or this commit was applied and its reply
			// lost: the next lock finds the revocation it stamped.
			committed, providerErr = commit.At, rev.ProviderErr
			fenced++
			continue
		}
		if err != nil {
			return nil, err
		}
		if rev.Conn, err = s.cfg.Store.Connection(ctx, org, id); err != nil {
			return nil, err
		}
		return rev, nil
	}
	// Fenced three times: the last commit may still have been applied (its
	// reply lost), or another delete revoked the connection meanwhile.
	if c, err := s.cfg.Store.Connection(ctx, org, id); err == nil && c.Status == linkflow.ConnRevoked {
		return revoked(c, committed, providerErr), nil
	}
	return nil, ErrBusy
}

// revoked is Delete's outcome for a connection found revoked: this call's
// own revocation when it carries the time this call's last fenced commit
// stamped (that commit was applied, its reply lost), with what the provider
// answered it; else one made before (Already).
func revoked(c *linkflow.Connection, committed time.Time, providerErr error) *Revocation {
	mine := !committed.IsZero() && c.RevokedAt.UnixMilli() == committed.UnixMilli()
	rev := &Revocation{Conn: c, AtProvider: c.RevokedAtProvider, Already: !mine}
	if mine {
		rev.ProviderErr = providerErr
	}
	return rev
}

// clip cuts s to at most n bytes without breaking a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
