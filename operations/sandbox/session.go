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
//
// A session reads the account as it was when its login completed, plus its
// own writes, the way a real provider's session holds its own view: the
// login loads what writes changed in the account along with its other Redis
// work, and reads cost no round trip.
type session struct {
	mu          sync.Mutex
	id          string
	org         string
	integration string
	username    string
	displayName string
	challenge   *operations.Challenge // set while the login waits for an answer
	expiresAt   time.Time
	renewedAt   time.Time
	// written are the cards writes added to the account, newest first. The
	// slice is replaced, never changed in place, so a reader may keep the one
	// it got after unlocking.
	written []PaymentMethod
}

// account names the session's account.
func (sess *session) account() AccountRef {
	return AccountRef{OrgID: sess.org, Integration: sess.integration, Username: sess.username}
}

// writtenCards returns the session's view of the account's written cards.
func (sess *session) writtenCards() []PaymentMethod {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.written
}

// remember makes a card the session wrote visible to its later reads, once:
// a replayed write whose card the session already sees changes nothing.
func (sess *session) remember(pm PaymentMethod) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for _, c := range sess.written {
		if c.ID == pm.ID {
			return
		}
	}
	kept := sess.written[:min(len(sess.written), ItemsKept-1)]
	sess.written = append([]PaymentMethod{pm}, kept...)
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
		return nil, operations.Rejected(fmt.Sprintf("unknown integration %q", integration))
	}
	log := s.log.WithLazy(zap.String("integration", integration), zap.String("username", req.Username), zap.Int("attempt", req.Attempt))
	switch {
	case req.Username == UserLocked:
		log.Debug("login: account locked")
		return nil, operations.AccountLocked("the account is locked: too many failed sign-in attempts")
	case req.Username == UserFlaky && req.Attempt <= 1:
		log.Debug("login: flaky first attempt")
		return nil, operations.Unavailable("the provider is temporarily unavailable, try again")
	case req.Username == "" || req.Password != PasswordGood:
		log.Debug("login: invalid credentials")
		return nil, operations.InvalidCredentials("the username or password is not correct")
	}
	now := s.now()
	s.sessions.sweep(now, s.cfg.SessionTTL)
	a := newAccount(integration, req.Username)
	sess := &session{
		id:          "sbx_ses_" + randomHex(16),
		org:         req.OrgID,
		integration: integration,
		username:    req.Username,
		displayName: a.profile().Name,
		expiresAt:   now.Add(s.cfg.SessionTTL),
		renewedAt:   now,
	}
	// One round trip counts the session and, unless a challenge comes
	// first, saves the grant and loads the account.
	start := SessionStart{
		Account: sess.account(),
		Count:   &SessionCount{ID: sess.id, Now: now, ExpiresAt: sess.expiresAt},
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
		c := *sess.challenge
		res.Challenge = &c
	} else {
		res.Credentials, start.Grant = s.newGrant(sess.account())
		start.Load = writtenResources
		res.DisplayName = sess.displayName
	}
	started, err := s.store.StartSandboxSession(ctx, start)
	if err == nil && start.Load != nil {
		sess.written, err = decodeCards(started.Written[ResourcePaymentMethod])
	}
	if err != nil {
		s.forget(ctx, sess)
		return nil, fmt.Errorf("sandbox login: %w", err)
	}
	s.sessions.add(sess)
	if res.Challenge != nil {
		log.Debug("login: challenge", zap.String("session", sess.id))
	} else {
		log.Debug("login: ok", zap.String("session", sess.id))
	}
	return res, nil
}

// forget stops counting a session that Login could not finish. The failed
// round trip may or may not have counted it; removing it is safe either way.
func (s *Sandbox) forget(ctx context.Context, sess *session) {
	if err := s.store.CloseSandboxSession(context.WithoutCancel(ctx), sess.integration, sess.id); err != nil {
		s.log.Warn("stop counting failed session", zap.String("session", sess.id), zap.Error(err))
	}
}

func (s *Sandbox) continueLogin(ctx context.Context, integration string, req operations.ContinueRequest) (*operations.LoginResult, error) {
	now := s.now()
	sess, ok := s.sessions.get(req.SessionID, now)
	if !ok || sess.integration != integration {
		return nil, operations.Unavailable("the sign-in session expired, start again")
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	c := sess.challenge
	switch {
	case c == nil:
		return nil, operations.Rejected("the sign-in has no challenge to answer")
	case req.ChallengeID != c.ID:
		return nil, operations.ChallengeFailed("that challenge is not the one asked")
	case !now.Before(c.ExpiresAt):
		return nil, operations.ChallengeFailed("the code expired")
	case req.Response != OTPCode:
		s.touch(ctx, sess, now)
		return nil, operations.ChallengeFailed("the code is not correct")
	}
	// The session reads the account as it is now that the login completes.
	creds, grant := s.newGrant(sess.account())
	started, err := s.store.StartSandboxSession(ctx, SessionStart{Account: sess.account(), Grant: grant, Load: writtenResources})
	var written []PaymentMethod
	if err == nil {
		written, err = decodeCards(started.Written[ResourcePaymentMethod])
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox issue credentials: %w", err)
	}
	sess.challenge, sess.written = nil, written
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
