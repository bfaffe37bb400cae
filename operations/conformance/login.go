package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"

	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
)

func (s *suite) testLoginGood(t *testing.T) {
	for _, user := range []string{sandbox.UserGood, uniqueUser(t)} {
		res := s.login(t, user)
		if res.Challenge != nil {
			t.Fatalf("%s: unexpected challenge %+v", user, res.Challenge)
		}
		checkCredentials(t, res, s.h.Now())
	}
}

func checkCredentials(t *testing.T, res *operations.LoginResult, now time.Time) {
	t.Helper()
	c := res.Credentials
	if c == nil || c.AccessToken == "" || c.RefreshToken == "" {
		t.Fatalf("login left no credentials: %+v", c)
	}
	if !strings.EqualFold(c.TokenType, "bearer") || !c.ExpiresAt.After(now) {
		t.Fatalf("credentials: token type %q, expiring %v", c.TokenType, c.ExpiresAt)
	}
	if res.DisplayName == "" {
		t.Fatal("login gave no display name")
	}
}

func (s *suite) loginErr(t *testing.T, user, password string, attempt int) error {
	t.Helper()
	res, err := s.p.Login(ctxFor(t), operations.LoginRequest{OrgID: OrgID,
		Integration: s.id, LinkID: "link_conformance", Attempt: attempt, Username: user, Password: password,
	})
	if res != nil && res.SessionID != "" {
		t.Cleanup(func() { _ = s.p.Close(context.Background(), res.SessionID) })
	}
	return err
}

func (s *suite) testLoginBadPassword(t *testing.T) {
	for _, user := range []string{sandbox.UserGood, sandbox.UserMFA, uniqueUser(t)} {
		wantError(t, s.loginErr(t, user, "wrong", 1), linkflow.FailureInvalidCredentials)
	}
	wantError(t, s.loginErr(t, "", sandbox.PasswordGood, 1), linkflow.FailureInvalidCredentials)
}

func (s *suite) testLoginLocked(t *testing.T) {
	for _, pw := range []string{sandbox.PasswordGood, "wrong"} {
		wantError(t, s.loginErr(t, sandbox.UserLocked, pw, 1), linkflow.FailureAccountLocked)
	}
}

// challenge logs user_mfa in and returns the pending login.
func (s *suite) challenge(t *testing.T) *operations.LoginResult {
	t.Helper()
	res := s.login(t, sandbox.UserMFA)
	c := res.Challenge
	if c == nil {
		t.Fatal("user_mfa got no challenge")
	}
	if c.ID == "" || c.Type != "otp" || c.Message == "" {
		t.Fatalf("challenge = %+v", c)
	}
	if res.Credentials != nil {
		t.Fatal("a pending login must not hand out credentials")
	}
	return res
}

func (s *suite) answer(t *testing.T, res *operations.LoginResult, code string) (*operations.LoginResult, error) {
	t.Helper()
	return s.p.ContinueLogin(ctxFor(t), operations.ContinueRequest{
		Integration: s.id, SessionID: res.SessionID, ChallengeID: res.Challenge.ID, Response: code,
	})
}

func (s *suite) testChallengeRight(t *testing.T) {
	res := s.challenge(t)
	// Operations wait for the login to complete.
	if _, err := s.exec(ctxFor(t), res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", ""); err == nil {
		t.Fatal("an operation ran before the challenge was answered")
	}
	done, err := s.answer(t, res, sandbox.OTPCode)
	if err != nil {
		t.Fatal(err)
	}
	if done.Challenge != nil {
		t.Fatalf("another challenge: %+v", done.Challenge)
	}
	checkCredentials(t, done, s.h.Now())
	s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "", nil)
}

func (s *suite) testChallengeWrongThenRight(t *testing.T) {
	res := s.challenge(t)
	for _, code := range []string{"000000", ""} {
		_, err := s.answer(t, res, code)
		wantError(t, err, linkflow.FailureChallengeFailed)
	}
	done, err := s.answer(t, res, sandbox.OTPCode)
	if err != nil {
		t.Fatalf("the right code after wrong ones: %v", err)
	}
	checkCredentials(t, done, s.h.Now())
}

func (s *suite) testFlaky(t *testing.T) {
	err := s.loginErr(t, sandbox.UserFlaky, sandbox.PasswordGood, 1)
	pe := wantError(t, err, linkflow.FailureProviderUnavailable)
	if pe.RetryAfter < 0 {
		t.Fatalf("retry after %v", pe.RetryAfter)
	}
	res, err := s.p.Login(ctxFor(t), operations.LoginRequest{OrgID: OrgID,
		Integration: s.id, LinkID: "link_conformance", Attempt: 2, Username: sandbox.UserFlaky, Password: sandbox.PasswordGood,
	})
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	t.Cleanup(func() { _ = s.p.Close(context.Background(), res.SessionID) })
	checkCredentials(t, res, s.h.Now())
}

func (s *suite) testRefreshRevoke(t *testing.T) {
	ctx := ctxFor(t)
	refresher, ok := s.p.(operations.Refresher)
	if !ok {
		t.Fatal("the provider cannot refresh credentials")
	}
	revoker, ok := s.p.(operations.Revoker)
	if !ok {
		t.Fatal("the provider cannot revoke credentials")
	}
	first := *s.login(t, uniqueUser(t)).Credentials
	next, err := refresher.Refresh(ctx, first)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.AccessToken == first.AccessToken || next.RefreshToken == first.RefreshToken || next.RefreshToken == "" {
		t.Fatalf("refresh did not replace the tokens: %+v", next)
	}
	_, err = refresher.Refresh(ctx, first)
	wantError(t, err, linkflow.FailureInvalidCredentials)

	if err := revoker.Revoke(ctx, *next); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if err := revoker.Revoke(ctx, *next); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	_, err = refresher.Refresh(ctx, *next)
	wantError(t, err, linkflow.FailureInvalidCredentials)
	_, err = refresher.Refresh(ctx, operations.Credentials{AccessToken: "x", RefreshToken: "not-a-token"})
	wantError(t, err, linkflow.FailureInvalidCredentials)

	if s.h.Sandbox != nil {
		g, err := s.h.Sandbox.Grant(ctx, *next)
		if err != nil || g == nil || g.Status != sandbox.GrantRevoked || g.Refreshes != 1 {
			t.Fatalf("the revoke did not reach the provider: %+v, %v", g, err)
		}
	}
}

func (s *suite) testClose(t *testing.T) {
	ctx := ctxFor(t)
	res, err := s.p.Login(ctx, operations.LoginRequest{OrgID: OrgID,
		Integration: s.id, LinkID: "link_conformance", Attempt: 1, Username: uniqueUser(t), Password: sandbox.PasswordGood,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.p.Close(ctx, res.SessionID); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.p.Close(ctx, res.SessionID); err != nil {
		t.Fatalf("closing twice: %v", err)
	}
	if err := s.p.Close(ctx, "no-such-session"); err != nil {
		t.Fatalf("closing an unknown session: %v", err)
	}
	_, err = s.exec(ctx, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "")
	if err == nil {
		t.Fatal("an operation ran in a closed session")
	}
	// The protocol's answer for an unknown or closed session: transient,
	// so linkflow logs in again rather than failing the link.
	if pe := operations.AsError(err); pe.Code != linkflow.FailureProviderUnavailable {
		t.Fatalf("an operation in a closed session failed with %s (%v), want PROVIDER_UNAVAILABLE", pe.Code, err)
	}
}

func (s *suite) testSlow(t *testing.T) {
	res := s.login(t, sandbox.UserSlow)
	start := time.Now()
	s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "", nil)
	if took := time.Since(start); took < s.h.SlowDelay {
		t.Fatalf("user_slow's operation took %v, want at least %v", took, s.h.SlowDelay)
	}
}

func (s *suite) testCancel(t *testing.T) {
	res := s.login(t, sandbox.UserSlow)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.exec(ctx, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "")
	took := time.Since(start)
	if err == nil {
		t.Fatal("the operation outlived its context")
	}
	if took >= s.h.SlowDelay/2 {
		t.Fatalf("a cancelled operation returned after %v; the delay is %v", took, s.h.SlowDelay)
	}
	if code := operations.AsError(err).Code; code != linkflow.FailureProviderTimeout {
		t.Fatalf("a deadline reported as %s: %v", code, err)
	}
}
