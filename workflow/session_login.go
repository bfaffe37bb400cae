package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

// login logs in with the end user's password. When the provider refuses it
// (INVALID_CREDENTIALS), the session asks the end user for the password
// again (a credentials challenge), up to PasswordTries passwords in all, the
// claim's included, and keeps the one that worked for later attempts. A
// refused password is never tried again: an attempt after one that was
// handed back while it asked (a shutdown, a Redis outage) asks before it
// logs in, and the passwords tried are counted across attempts. No
// operation runs before a login succeeded.
func (s *session) login(p operations.Provider) (*operations.LoginResult, error) {
	l, tries := s.link, s.w.cfg.PasswordTries
	password, refused := s.r.Password, s.r.PasswordsRefused
	if refused > 0 {
		if refused >= tries {
			return nil, &linkflow.LinkError{Code: linkflow.FailureInvalidCredentials,
				Message: fmt.Sprintf("The provider refused %d passwords.", refused)}
		}
		// Whether the end user entered one more meanwhile is not known.
		ch, err := s.askPassword(refused, "The login was interrupted. Enter your password again.")
		if err != nil {
			return nil, err
		}
		if password, err = s.waitPassword(ch); err != nil {
			return nil, err
		}
	}
	for try := refused + 1; ; try++ {
		start := s.w.cfg.Clock.Now()
		ctx, ids := operations.WithRequestIDs(s.ctx)
		lr, err := p.Login(ctx, operations.LoginRequest{
			Integration: l.IntegrationID, OrgID: l.OrgID, LinkID: l.ID, Attempt: l.Attempts,
			Username: l.Username, Password: password,
		})
		e := s.step(linkflow.TraceLogin, start, ids, err)
		if err != nil && operations.AsError(err).Code == linkflow.FailureInvalidCredentials && try < tries {
			// The refusal is recorded before anything else.
			ch, err := s.askPassword(try, "Wrong username or password.")
			s.trace(e)
			if lr != nil && lr.SessionID != "" {
				s.closeSession(p, lr.SessionID)
			}
			if err != nil {
				return nil, err
			}
			if password, err = s.waitPassword(ch); err != nil {
				return nil, err
			}
			continue
		}
		if err == nil && lr.Challenge != nil {
			e.Outcome = "challenge"
		}
		s.trace(e)
		if err != nil {
			return lr, err
		}
		if try > 1 { // entered again: kept for later attempts
			if err := s.underLease(func() error {
				return s.w.cfg.Store.SetChallenge(s.ctx, l.OrgID, l.ID, s.r.Token, nil, password)
			}); err != nil {
				return lr, err
			}
		}
		return lr, nil
	}
}

// askPassword records that the provider refused refused passwords in a row,
// and asks the end user for the password again (PasswordTries-refused may
// still be tried). A Redis that does not answer is asked again, more slowly
// each time, for as long as the challenge's timeout: a refusal the store
// does not hear of would have a later attempt send the refused password
// again.
func (s *session) askPassword(refused int, lastError string) (*linkflow.Challenge, error) {
	ch := &linkflow.Challenge{ID: "cred_" + linkflow.NewLeaseToken()[:12], Type: linkflow.ChallengeCredentials,
		Message: "Enter your password again.", AttemptsLeft: s.w.cfg.PasswordTries - refused, LastError: lastError}
	giveUp := s.w.cfg.Clock.Now().Add(s.w.cfg.ChallengeTimeout)
	for fails := 0; ; fails++ {
		// The end user has the whole timeout from the moment they are asked.
		ch.ExpiresAt = s.w.cfg.Clock.Now().Add(s.w.cfg.ChallengeTimeout)
		err := s.underLease(func() error {
			return s.w.cfg.Store.AskPassword(s.ctx, s.link.OrgID, s.link.ID, s.r.Token, ch, refused)
		})
		if err == nil || errors.Is(err, linkflow.ErrFenced) || s.ctx.Err() != nil ||
			!s.w.cfg.Clock.Now().Before(giveUp) {
			return ch, err
		}
		if fails == 0 {
			s.log.Warn("record a refused password; asking again", zap.Error(err))
		}
		select {
		case <-s.w.cfg.Clock.After(storeRetryDelay(fails)):
		case <-s.ctx.Done():
			return ch, err
		}
	}
}

// waitPassword waits for the answer to ch, a credentials challenge.
func (s *session) waitPassword(ch *linkflow.Challenge) (string, error) {
	password, err := s.waitInput(ch)
	var le *linkflow.LinkError
	if errors.As(err, &le) && le.Code == linkflow.FailureChallengeTimeout {
		return "", &linkflow.LinkError{Code: linkflow.FailureInvalidCredentials,
			Message: "The password was refused and not entered again in time."}
	}
	return password, err
}

func (s *session) closeSession(p operations.Provider, sessionID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx, sessionID); err != nil {
		s.log.Debug("close provider session", zap.Error(err))
	}
}

// answerChallenges waits for the end user's answers until the login
// completes, a challenge fails too often, times out, or the link is
// canceled. It holds no goroutine besides this session's own and frees the
// process slot while it waits.
func (s *session) answerChallenges(p operations.Provider, lr *operations.LoginResult) (*operations.LoginResult, error) {
	tries := s.w.cfg.ChallengeTries
	lastErr := ""
	for lr.Challenge != nil {
		c := lr.Challenge
		expires := s.w.cfg.Clock.Now().Add(s.w.cfg.ChallengeTimeout)
		if !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(expires) {
			expires = c.ExpiresAt
		}
		ch := &linkflow.Challenge{ID: c.ID, Type: c.Type, Message: c.Message, ExpiresAt: expires,
			AttemptsLeft: tries, LastError: lastErr}
		if err := s.underLease(func() error {
			return s.w.cfg.Store.SetChallenge(s.ctx, s.link.OrgID, s.link.ID, s.r.Token, ch, "")
		}); err != nil {
			return nil, err
		}
		resp, err := s.waitInput(ch)
		if err != nil {
			return nil, err
		}
		start := s.w.cfg.Clock.Now()
		ctx, ids := operations.WithRequestIDs(s.ctx)
		next, err := p.ContinueLogin(ctx, operations.ContinueRequest{
			Integration: s.link.IntegrationID, SessionID: lr.SessionID, ChallengeID: c.ID, Response: resp,
		})
		e := s.step(linkflow.TraceAnswer, start, ids, err)
		e.ChallengeType = c.Type
		if err != nil {
			pe := operations.AsError(err)
			if pe.Code == linkflow.FailureChallengeFailed && tries > 1 {
				e.Outcome = "wrong"
				s.trace(e)
				tries--
				lastErr = "That code was not accepted. Try again."
				continue
			}
			s.trace(e)
			return nil, err
		}
		if next.Challenge != nil {
			e.Outcome = "challenge"
		}
		s.trace(e)
		if next.SessionID == "" {
			next.SessionID = lr.SessionID
		}
		s.opens(next)
		lr = next
		if err := s.underLease(func() error {
			return s.w.cfg.Store.SetChallenge(s.ctx, s.link.OrgID, s.link.ID, s.r.Token, nil, "")
		}); err != nil {
			return nil, err
		}
	}
	return lr, nil
}

// waitInput waits for the answer to challenge ch, until its ExpiresAt.
func (s *session) waitInput(ch *linkflow.Challenge) (resp string, err error) {
	start := s.w.cfg.Clock.Now()
	defer func() {
		e := s.step(linkflow.TraceChallenge, start, nil, err)
		e.ChallengeType = ch.Type
		if err == nil {
			e.Outcome = "answered"
		}
		s.trace(e)
	}()
	timer := s.w.cfg.Clock.NewTimer(ch.ExpiresAt.Sub(s.w.cfg.Clock.Now()))
	defer timer.Stop()
	// The process slot is free while the end user types.
	<-s.w.slots
	defer func() { s.w.slots <- struct{}{} }()
	// A Redis that does not answer for a while must not cost the end user
	// the login: the answer is asked for again, more slowly each time,
	// until the challenge expires.
	take := func(closing string) (cid, resp string, err error) {
		err = s.underLease(func() (err error) {
			cid, resp, err = s.w.cfg.Store.TakeInput(s.ctx, s.link.ID, s.r.Token, closing)
			return err
		})
		return cid, resp, err
	}
	for fails := 0; ; {
		var again <-chan time.Time
		cid, resp, err := take("")
		switch {
		case errors.Is(err, linkflow.ErrFenced) || errors.Is(err, linkflow.ErrUnreadable) || (err != nil && s.ctx.Err() != nil):
			return "", err
		case err != nil:
			if fails++; fails == 1 {
				s.log.Warn("take the challenge's answer; asking again", zap.Error(err))
			}
			again = s.w.cfg.Clock.After(storeRetryDelay(fails))
		case cid == ch.ID:
			return resp, nil
		default:
			fails = 0
		}
		select {
		case <-s.inputCh:
		case <-again:
		case <-timer.Chan():
			// An answer that came just in time, its notice not read yet
			// (or lost), is still taken; this read closes the challenge, so
			// one the API stores after it is refused, not accepted and
			// dropped.
			cid, resp, err := take(ch.ID)
			switch {
			case err != nil:
				// Whether the end user answered is unknown: not their fault.
				return "", err
			case cid == ch.ID:
				return resp, nil
			}
			return "", &linkflow.LinkError{Code: linkflow.FailureChallengeTimeout, Message: "The challenge was not answered in time."}
		case <-s.cancelCh:
			return "", &linkflow.LinkError{Code: linkflow.FailureCanceled, Message: "The link was canceled while waiting for input."}
		case <-s.ctx.Done():
			return "", s.ctx.Err()
		}
	}
}

// storeRetryDelay is the pause before a session asks a Redis that did not
// answer once more, after fails failures in a row: 50 ms doubled fails
// times, at most a second.
func storeRetryDelay(fails int) time.Duration {
	return min(50*time.Millisecond<<min(fails, 5), time.Second)
}
