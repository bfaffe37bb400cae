package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow/operations"
)

// A session lives in the memory of the process that opened it: a session
// never outlives the worker running it. It counts as live, in Redis, from the
// moment Login hands out its id (logged in, or waiting for a challenge's
// answer) until Close, or until SessionTTL passes without a call, so that a
// process that died stops counting.
type session struct {
	mu          sync.Mutex
	id          string
	integration string
	username    string
	displayName string
	challenge   *operations.Challenge // set while the login waits for an answer
	creds       *operations.Credentials
	expiresAt   time.Time
	renewedAt   time.Time
}

type sessions struct {
	mu        sync.Mutex
	m         map[string]*session
	lastSweep time.Time
}

func newSessions() *sessions { return &sessions{m: map[string]*session{}} }

func (ss *sessions) add(s *session) {
	ss.mu.Lock()
	ss.m[s.id] = s
	ss.mu.Unlock()
}

// get returns the live session id; an expired one is dropped.
func (ss *sessions) get(id string, now time.Time) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	expired := !now.Before(s.expiresAt)
	s.mu.Unlock()
	if expired {
		delete(ss.m, id)
		return nil, false
	}
	return s, true
}

func (ss *sessions) remove(id string) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	delete(ss.m, id)
	return s, ok
}

// sweep drops expired sessions that nobody closed, at most once per ttl.
func (ss *sessions) sweep(now time.Time, ttl time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if now.Sub(ss.lastSweep) < ttl {
		return
	}
	ss.lastSweep = now
	for id, s := range ss.m {
		s.mu.Lock()
		if !now.Before(s.expiresAt) {
			delete(ss.m, id)
		}
		s.mu.Unlock()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Sandbox) login(ctx context.Context, integration string, req operations.LoginRequest) (*operations.LoginResult, error) {
	if !knownIntegration(integration) {
		return nil, operations.ErrRejected(fmt.Sprintf("unknown integration %q", integration))
	}
	log := s.log.With(zap.String("integration", integration), zap.String("username", req.Username), zap.Int("attempt", req.Attempt))
	switch {
	case req.Username == UserLocked:
		log.Debug("login: account locked")
		return nil, operations.ErrAccountLocked("the account is locked: too many failed sign-in attempts")
	case req.Username == UserFlaky && req.Attempt <= 1:
		log.Debug("login: flaky first attempt")
		return nil, operations.ErrUnavailable("the provider is temporarily unavailable, try again")
	case req.Username == "" || req.Password != PasswordGood:
		log.Debug("login: invalid credentials")
		return nil, operations.ErrInvalidCredentials("the username or password is not correct")
	}
	now := s.now()
	s.sessions.sweep(now, s.cfg.SessionTTL)
	a := newAccount(integration, req.Username)
	sess := &session{
		id:          "sbx_ses_" + randomHex(16),
		integration: integration,
		username:    req.Username,
		displayName: a.profile().Name,
		expiresAt:   now.Add(s.cfg.SessionTTL),
		renewedAt:   now,
	}
	if _, err := s.store.OpenSandboxSession(ctx, integration, sess.id, now, sess.expiresAt); err != nil {
		return nil, fmt.Errorf("sandbox login: %w", err)
	}
	res := &operations.LoginResult{SessionID: sess.id}
	if req.Username == UserMFA {
		phone := a.profile().Phone
		sess.challenge = &operations.Challenge{
			ID:        "sbx_chl_" + randomHex(8),
			Type:      "otp",
			Message:   fmt.Sprintf("Enter the 6-digit code we sent to the phone number ending in %s.", phone[len(phone)-4:]),
			ExpiresAt: now.Add(s.cfg.ChallengeTTL).UTC().Truncate(time.Millisecond),
		}
		s.sessions.add(sess)
		c := *sess.challenge
		res.Challenge = &c
		log.Debug("login: challenge", zap.String("session", sess.id))
		return res, nil
	}
	creds, err := s.issue(ctx, integration, req.Username)
	if err != nil {
		s.forget(ctx, sess)
		return nil, err
	}
	sess.creds = creds
	s.sessions.add(sess)
	res.Credentials, res.DisplayName = creds, sess.displayName
	log.Debug("login: ok", zap.String("session", sess.id))
	return res, nil
}

// forget stops counting a session that Login could not finish.
func (s *Sandbox) forget(ctx context.Context, sess *session) {
	if err := s.store.CloseSandboxSession(context.WithoutCancel(ctx), sess.integration, sess.id); err != nil {
		s.log.Warn("stop counting failed session", zap.String("session", sess.id), zap.Error(err))
	}
}

func (s *Sandbox) continueLogin(ctx context.Context, integration string, req operations.ContinueRequest) (*operations.LoginResult, error) {
	now := s.now()
	sess, ok := s.sessions.get(req.SessionID, now)
	if !ok || sess.integration != integration {
		return nil, operations.ErrUnavailable("the sign-in session expired, start again")
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	c := sess.challenge
	switch {
	case c == nil:
		return nil, operations.ErrRejected("the sign-in has no challenge to answer")
	case req.ChallengeID != c.ID:
		return nil, operations.ErrChallengeFailed("that challenge is not the one asked")
	case !now.Before(c.ExpiresAt):
		return nil, operations.ErrChallengeFailed("the code expired")
	case req.Response != OTPCode:
		s.touch(ctx, sess, now)
		return nil, operations.ErrChallengeFailed("the code is not correct")
	}
	creds, err := s.issue(ctx, integration, sess.username)
	if err != nil {
		return nil, err
	}
	sess.challenge, sess.creds = nil, creds
	s.touch(ctx, sess, now)
	return &operations.LoginResult{SessionID: sess.id, Credentials: creds, DisplayName: sess.displayName}, nil
}

// touch extends a session on each call, and its count in Redis when a
// quarter of its lifetime passed since the last renewal (so that most calls
// cost no round trip). The caller holds sess.mu.
func (s *Sandbox) touch(ctx context.Context, sess *session, now time.Time) {
	sess.expiresAt = now.Add(s.cfg.SessionTTL)
	if now.Sub(sess.renewedAt) < s.cfg.SessionTTL/4 {
		return
	}
	sess.renewedAt = now
	if err := s.store.RenewSandboxSession(ctx, sess.integration, sess.id, sess.expiresAt); err != nil {
		// The count's entry expires on its own; a missed renewal only
		// undercounts a long session.
		s.log.Warn("renew sandbox session count", zap.String("session", sess.id), zap.Error(err))
	}
}

func (s *Sandbox) closeSession(ctx context.Context, id string) error {
	sess, ok := s.sessions.remove(id)
	if !ok {
		return nil
	}
	if err := s.store.CloseSandboxSession(ctx, sess.integration, sess.id); err != nil {
		return fmt.Errorf("sandbox close: %w", err)
	}
	return nil
}

// MaxConcurrentSessions returns the most sessions of integration ever live at
// once, across every process sharing the store, since the last reset.
func (s *Sandbox) MaxConcurrentSessions(ctx context.Context, integration string) (int, error) {
	_, m, err := s.store.SandboxSessions(ctx, integration, s.now())
	return m, err
}

// LiveSessions returns how many sessions of integration are live now.
func (s *Sandbox) LiveSessions(ctx context.Context, integration string) (int, error) {
	n, _, err := s.store.SandboxSessions(ctx, integration, s.now())
	return n, err
}

// ResetMaxConcurrentSessions sets the recorded maximum of integration to the
// sessions live now.
func (s *Sandbox) ResetMaxConcurrentSessions(ctx context.Context, integration string) error {
	return s.store.ResetSandboxSessions(ctx, integration, s.now())
}
