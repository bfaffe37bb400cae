package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/linkflow/linkflow/operations"
)

// Tokens look like sbx_at_<grant>_<secret> and sbx_rt_<grant>_<secret>: the
// grant id finds the record in one key, and only the tokens' hashes are kept.
const (
	accessPrefix  = "sbx_at_"
	refreshPrefix = "sbx_rt_"
)

var scopes = map[string]string{
	TMobile:  "profile billing payment_methods",
	ATT:      "profile billing payment_methods",
	Verizon:  "profile billing payment_methods",
	UberEats: "orders payment_methods",
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// grantID returns the grant a token names, "" when it is not a sandbox
// token of the kind prefix.
func grantID(tok, prefix string) string {
	rest, ok := strings.CutPrefix(tok, prefix)
	if !ok {
		return ""
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || id == "" || secret == "" {
		return ""
	}
	return id
}

func (s *Sandbox) newTokens(grant, scope string) *operations.Credentials {
	return &operations.Credentials{
		AccessToken:  accessPrefix + grant + "_" + randomHex(16),
		RefreshToken: refreshPrefix + grant + "_" + randomHex(16),
		TokenType:    "bearer",
		Scope:        scope,
		ExpiresAt:    s.now().Add(s.cfg.AccessTokenTTL).UTC().Truncate(time.Millisecond),
	}
}

// newGrant makes the credentials of a new grant, and the grant to save with
// them.
func (s *Sandbox) newGrant(a AccountRef) (*operations.Credentials, *Grant) {
	id := randomHex(8)
	creds := s.newTokens(id, scopes[a.Integration])
	return creds, &Grant{
		ID: id, OrgID: a.OrgID, Integration: a.Integration, Username: a.Username,
		AccessHash: tokenHash(creds.AccessToken), RefreshHash: tokenHash(creds.RefreshToken),
		Status: GrantActive, IssuedAt: s.now(),
	}
}

func (s *Sandbox) refresh(ctx context.Context, creds operations.Credentials) (*operations.Credentials, error) {
	id := grantID(creds.RefreshToken, refreshPrefix)
	if id == "" {
		return nil, operations.InvalidCredentials("not a sandbox refresh token")
	}
	next := s.newTokens(id, creds.Scope)
	ok, err := s.store.RotateSandboxGrant(ctx, id, tokenHash(creds.RefreshToken), tokenHash(next.AccessToken), tokenHash(next.RefreshToken))
	if err != nil {
		return nil, fmt.Errorf("sandbox refresh: %w", err)
	}
	if !ok {
		return nil, operations.InvalidCredentials("the refresh token was revoked, replaced or never issued")
	}
	return next, nil
}

func (s *Sandbox) revoke(ctx context.Context, creds operations.Credentials) error {
	for _, t := range []struct{ tok, prefix string }{{creds.RefreshToken, refreshPrefix}, {creds.AccessToken, accessPrefix}} {
		id := grantID(t.tok, t.prefix)
		if id == "" {
			continue
		}
		ok, err := s.store.RevokeSandboxGrant(ctx, id, tokenHash(t.tok), s.now())
		if err != nil {
			return fmt.Errorf("sandbox revoke: %w", err)
		}
		if ok {
			return nil
		}
	}
	return nil
}

// Grant returns the grant creds belong to, whether or not they are still
// current; nil when the sandbox never issued them. Tests use it to see that a
// revoke reached the provider.
func (s *Sandbox) Grant(ctx context.Context, creds operations.Credentials) (*Grant, error) {
	id := grantID(creds.RefreshToken, refreshPrefix)
	if id == "" {
		id = grantID(creds.AccessToken, accessPrefix)
	}
	if id == "" {
		return nil, nil
	}
	return s.store.SandboxGrant(ctx, id)
}
