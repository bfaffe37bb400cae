package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/linkflow/linkflow/internal/redact"
	"github.com/linkflow/linkflow/operations"
)

// RegisterConfig configures Register.
type RegisterConfig struct {
	// Config is shared by every integration's client; Integration is set per
	// integration. BaseURL is required.
	Config
	// IDs maps the provider's integration ids to the ids linkflow registers
	// them under. Default: an integration keeps its own id.
	IDs map[string]string
	// Only lists the provider's integrations to register. Default: every
	// integration of the catalog.
	Only []string
}

// Register fetches the catalog at cfg.BaseURL and registers each of its
// integrations in reg, with a Client as its provider. It returns the ids
// registered. A catalog is refused as a whole, before anything is
// registered, when one of its schemas does not compile or one of its ids is
// in reg already.
func Register(ctx context.Context, reg *operations.Registry, cfg RegisterConfig) ([]string, error) {
	base := cfg.Config
	base.Integration = ""
	if err := base.validate(); err != nil {
		return nil, err
	}
	base.setDefaults() // one HTTP client, so every integration shares its connections
	c, err := NewClient(base)
	if err != nil {
		return nil, err
	}
	cat, err := c.Catalog(ctx)
	if err != nil {
		return nil, fmt.Errorf("remote catalog at %s: %w", redact.URLs(base.BaseURL), err)
	}
	if cat.ProtocolVersion != ProtocolVersion {
		return nil, fmt.Errorf("remote catalog at %s: protocol version %d, want %d", redact.URLs(base.BaseURL), cat.ProtocolVersion, ProtocolVersion)
	}
	var staged []operations.Integration
	for _, ci := range cat.Integrations {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, ci.ID) {
			continue
		}
		in := ci.Integration
		ccfg := base
		ccfg.Integration = ci.ID
		client := &Client{cfg: ccfg}
		in.Provider = withCapabilities(client, ci.Capabilities)
		if id, ok := cfg.IDs[ci.ID]; ok {
			in.ID = id
		}
		// A remote integration must not silently take the place of one
		// already there (the sandbox's tmobile, say).
		if _, taken := reg.Integration(in.ID); taken {
			return nil, fmt.Errorf("remote catalog at %s: integration %s is already registered; map it to another id", redact.URLs(base.BaseURL), in.ID)
		}
		staged = append(staged, in)
	}
	// Compile every schema before registering any, in a scratch registry.
	scratch := operations.NewRegistry(nil)
	for _, in := range staged {
		if err := scratch.Register(in); err != nil {
			return nil, fmt.Errorf("remote catalog at %s: %w", redact.URLs(base.BaseURL), err)
		}
	}
	ids := make([]string, 0, len(staged))
	for _, in := range staged {
		if err := reg.Register(in); err != nil {
			return ids, err
		}
		ids = append(ids, in.ID)
	}
	return ids, nil
}

// withCapabilities returns a provider that implements Refresher and Revoker
// only when the integration supports them, so that the worker's type
// assertions tell the truth.
func withCapabilities(c *Client, caps Capabilities) operations.Provider {
	switch {
	case caps.Refresh && caps.Revoke:
		return c
	case caps.Refresh:
		return refreshingProvider{provider{c}}
	case caps.Revoke:
		return revokingProvider{provider{c}}
	}
	return provider{c}
}

// provider exposes only a Client's Provider methods.
type provider struct{ c *Client }

func (p provider) Login(ctx context.Context, req operations.LoginRequest) (*operations.LoginResult, error) {
	return p.c.Login(ctx, req)
}

func (p provider) ContinueLogin(ctx context.Context, req operations.ContinueRequest) (*operations.LoginResult, error) {
	return p.c.ContinueLogin(ctx, req)
}

func (p provider) Execute(ctx context.Context, req operations.ExecuteRequest) (json.RawMessage, error) {
	return p.c.Execute(ctx, req)
}

func (p provider) Close(ctx context.Context, sessionID string) error {
	return p.c.Close(ctx, sessionID)
}

func (p provider) Shutdown(ctx context.Context) { p.c.Shutdown(ctx) }

type refreshingProvider struct{ provider }

func (p refreshingProvider) Refresh(ctx context.Context, creds operations.Credentials) (*operations.Credentials, error) {
	return p.c.Refresh(ctx, creds)
}

type revokingProvider struct{ provider }

func (p revokingProvider) Revoke(ctx context.Context, creds operations.Credentials) error {
	return p.c.Revoke(ctx, creds)
}
