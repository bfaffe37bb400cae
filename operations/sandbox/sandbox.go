package sandbox

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow/operations"
)

// Magic credentials and test cards.
const (
	// PasswordGood is the password that logs any username in, except
	// UserLocked.
	PasswordGood = "pass_good"
	// UserGood logs in with PasswordGood and nothing special happens.
	UserGood = "user_good"
	// UserLocked is locked whatever the password.
	UserLocked = "user_locked"
	// UserMFA asks an OTP challenge whose answer is OTPCode.
	UserMFA = "user_mfa"
	// UserFlaky fails its first session attempt with a transient error.
	UserFlaky = "user_flaky"
	// UserSlow takes Config.SlowDelay for each operation.
	UserSlow = "user_slow"
	// OTPCode answers UserMFA's challenge.
	OTPCode = "123456"
	// CardDeclined is declined when written as a payment method.
	CardDeclined = "4000000000000002"
)

// ErrUnknownIntegration is returned for an integration the sandbox does not
// have.
var ErrUnknownIntegration = errors.New("sandbox: unknown integration")

// Config configures a Sandbox. Zero fields take the documented defaults.
type Config struct {
	// Store keeps the state shared between processes. Required.
	Store AccountStore
	// Latency is added to every operation, to model a real provider's
	// speed in benchmarks. Default 0.
	Latency time.Duration
	// SlowDelay is how long each of UserSlow's operations takes, on top of
	// Latency. Default 2s.
	SlowDelay time.Duration
	// SessionTTL is how long a session lives without a call. It must exceed
	// the time an end user may take to answer a challenge. Default 10 minutes.
	SessionTTL time.Duration
	// ChallengeTTL is how long an OTP challenge can be answered. Default 5
	// minutes.
	ChallengeTTL time.Duration
	// AccessTokenTTL is the lifetime stated in issued credentials. Default 1h.
	AccessTokenTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger logs logins at debug level. Default: no logging.
	Logger *zap.Logger
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("sandbox: Store is required")
	}
	if c.Latency < 0 || c.SlowDelay < 0 || c.SessionTTL < 0 || c.ChallengeTTL < 0 || c.AccessTokenTTL < 0 {
		return errors.New("sandbox: durations must not be negative")
	}
	return nil
}

// Sandbox serves the sandbox's integrations. It is safe for concurrent use.
type Sandbox struct {
	cfg      Config
	store    AccountStore
	now      func() time.Time
	log      *zap.Logger
	sessions *sessions
}

// New returns a Sandbox with cfg's defaults filled in.
func New(cfg Config) (*Sandbox, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.SlowDelay = cmp.Or(cfg.SlowDelay, 2*time.Second)
	cfg.SessionTTL = cmp.Or(cfg.SessionTTL, 10*time.Minute)
	cfg.ChallengeTTL = cmp.Or(cfg.ChallengeTTL, 5*time.Minute)
	cfg.AccessTokenTTL = cmp.Or(cfg.AccessTokenTTL, time.Hour)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Sandbox{
		cfg: cfg, store: cfg.Store, now: cfg.Now, log: cfg.Logger.Named("sandbox"),
		sessions: newSessions(),
	}, nil
}

// Provider is the sandbox serving one integration. It implements
// operations.Provider, operations.Refresher and operations.Revoker.
type Provider struct {
	sb          *Sandbox
	integration string
}

var (
	_ operations.Provider  = (*Provider)(nil)
	_ operations.Refresher = (*Provider)(nil)
	_ operations.Revoker   = (*Provider)(nil)
)

// Provider returns the provider of integration. Requests it serves are for
// integration whatever their Integration field says.
func (s *Sandbox) Provider(integration string) *Provider {
	return &Provider{sb: s, integration: integration}
}

// Login starts a session.
func (p *Provider) Login(ctx context.Context, req operations.LoginRequest) (*operations.LoginResult, error) {
	reportRequestID(ctx)
	return p.sb.login(ctx, p.integration, req)
}

// ContinueLogin answers the OTP challenge of UserMFA's login.
func (p *Provider) ContinueLogin(ctx context.Context, req operations.ContinueRequest) (*operations.LoginResult, error) {
	reportRequestID(ctx)
	return p.sb.continueLogin(ctx, p.integration, req)
}

// Execute runs one operation in a session.
func (p *Provider) Execute(ctx context.Context, req operations.ExecuteRequest) (json.RawMessage, error) {
	reportRequestID(ctx)
	return p.sb.execute(ctx, p.integration, req)
}

// reportRequestID gives each call a request id, as a real provider's API
// would, for debug links' traces.
func reportRequestID(ctx context.Context) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	operations.ReportRequestID(ctx, "sbx_"+hex.EncodeToString(b))
}

// Close ends a session; closing an unknown or closed session does nothing.
func (p *Provider) Close(ctx context.Context, sessionID string) error {
	return p.sb.closeSession(ctx, sessionID)
}

// Refresh exchanges a refresh token for new tokens; the old refresh token
// stops working.
func (p *Provider) Refresh(ctx context.Context, creds operations.Credentials) (*operations.Credentials, error) {
	return p.sb.refresh(ctx, creds)
}

// Revoke ends the grant creds belong to. Unknown or already revoked
// credentials are not an error, as in RFC 7009.
func (p *Provider) Revoke(ctx context.Context, creds operations.Credentials) error {
	return p.sb.revoke(ctx, creds)
}

// wait blocks for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sandbox: %w", ctx.Err())
	}
}

func knownIntegration(id string) bool {
	_, ok := displayNames[id]
	return ok
}
