package api

import (
	"context"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/monitor"
)

// Store is what the API needs from the store.
type Store interface {
	Authenticate(ctx context.Context, secret string, gate *linkflow.RateLimitRequest) (*linkflow.Principal, *linkflow.RateLimitResult, error)
	IssueToken(ctx context.Context, p *linkflow.Principal, keySecret string, scopes []string, ttl time.Duration) (string, error)
	UserByEmail(ctx context.Context, email string) (*linkflow.User, error)
	Org(ctx context.Context, id string) (*linkflow.Org, error)
	RateLimit(ctx context.Context, reqs ...linkflow.RateLimitRequest) ([]linkflow.RateLimitResult, error)

	CreateLink(ctx context.Context, in linkflow.NewLink) (*linkflow.Created, error)
	Replay(ctx context.Context, org, key, requestHash string) (*linkflow.Created, error)
	Link(ctx context.Context, org, id string) (*linkflow.Link, error)
	LinkWithCode(ctx context.Context, org, id string) (*linkflow.Link, error)
	ListLinks(ctx context.Context, org string, f linkflow.LinkFilter, cursor string, limit int) ([]*linkflow.Link, string, error)
	CancelLink(ctx context.Context, org, id string) (*linkflow.CancelResult, error)
	LinkByCode(ctx context.Context, linkID, code string) (*linkflow.Link, error)
	ClaimLink(ctx context.Context, linkID, code, username, password string) (*linkflow.Claim, error)
	SubmitInput(ctx context.Context, linkID, code, challengeID, response string) (*linkflow.Link, error)
	Trace(ctx context.Context, org, id string) (*linkflow.Link, []linkflow.TraceEntry, error)

	Connection(ctx context.Context, org, id string) (*linkflow.Connection, error)
	ListConnections(ctx context.Context, org string, f linkflow.ConnectionFilter, cursor string, limit int) ([]*linkflow.Connection, string, error)
	UpdateConnection(ctx context.Context, org, id string, p linkflow.ConnectionPatch) (*linkflow.Connection, error)
	RecordSecretRead(ctx context.Context, org, id string, r linkflow.SecretRead) error
	SecretReads(ctx context.Context, org, id string, limit int) ([]linkflow.SecretRead, error)
}

// Messenger is what the API needs of messaging (outbox.Publisher and
// outbox.Notifier together): publishing the messages its state changes
// recorded in the outbox, and waking the worker running a link.
type Messenger interface {
	Publish(ctx context.Context, msgs ...linkflow.Message) error
	Cancel(org, linkID string)
	Input(org, linkID string)
}

// Connections is what the API needs to refresh and revoke connections
// (connections.Service is one).
type Connections interface {
	Read(ctx context.Context, org, id string, policy linkflow.RefreshPolicy, onWait func()) (*connections.Read, error)
	Delete(ctx context.Context, org, id string) (*connections.Revocation, error)
}

// ReadyCheck is one check of GET /readyz: Redis answers, NATS is connected,
// the streams exist.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// OperatorView is what the operator's page shows (monitor.Monitor is one).
type OperatorView interface {
	Status(ctx context.Context) (*monitor.Status, error)
}
