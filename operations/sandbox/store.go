package sandbox

import (
	"context"
	"encoding/json"
	"time"
)

// AccountRef names one sandbox account. Accounts belong to the organization
// whose link logged in: two organizations using the same username see two
// accounts, each with its own writes.
type AccountRef struct {
	OrgID       string
	Integration string
	Username    string
}

// AccountStore is the state the sandbox shares between processes: what writes
// changed in each account, the session counts and the credentials logins
// handed out. store.Store implements it on Redis.
type AccountStore interface {
	WriteStore
	SessionStarter
	SessionCounter
	GrantStore
}

// ItemsKept is how many written items of each resource an account keeps: the
// newest. Older ones drop out of reads.
const ItemsKept = 20

// WriteStore keeps each account's writes.
type WriteStore interface {
	// ApplySandboxWrite records w in the account once per w.IdempotencyKey, in
	// one atomic step: the first call adds w.Result to the account's written
	// items of w.Resource (keeping the newest ItemsKept) and appends w to its
	// write log; a later call with the same key changes nothing and returns
	// the first record, with replayed set.
	ApplySandboxWrite(ctx context.Context, acct AccountRef, w WriteRecord) (first WriteRecord, replayed bool, err error)
	// SandboxItems returns the results written to resource in the account,
	// newest first; none when nothing was written.
	SandboxItems(ctx context.Context, acct AccountRef, resource string) ([]json.RawMessage, error)
	// SandboxWriteLog returns the account's write log, oldest first.
	SandboxWriteLog(ctx context.Context, acct AccountRef) ([]WriteRecord, error)
}

// SessionStarter does the shared-state work of a login step in one round
// trip, since the sandbox's sessions are many and short.
type SessionStarter interface {
	// StartSandboxSession does what s asks: counts a new session, saves a
	// grant, loads the account's written items. The parts are not atomic
	// (their keys live in different cluster slots): after an error, any of
	// them may have happened, so the caller stops counting a session it asked
	// to count; a grant saved without its session is harmless, since nobody
	// holds its tokens and it expires.
	StartSandboxSession(ctx context.Context, s SessionStart) (SessionStarted, error)
}

// SessionStart is the shared-state work of one login step.
type SessionStart struct {
	Account AccountRef
	// Count, when set, counts a new session of the account's integration as
	// live (see SessionCounter).
	Count *SessionCount
	// Grant, when set, is stored as a new grant.
	Grant *Grant
	// Load lists the resources of the account whose written items to return.
	Load []string
}

// SessionCount counts session ID as live until ExpiresAt; sessions that
// expired by Now stop counting, and the recorded maximum rises when the live
// count passes it.
type SessionCount struct {
	ID        string
	Now       time.Time
	ExpiresAt time.Time
}

// SessionStarted is what StartSandboxSession found.
type SessionStarted struct {
	// Live is how many sessions of the integration are live, the new one
	// included; 0 when SessionStart.Count was nil.
	Live int
	// Written holds the results written to each resource of SessionStart.Load,
	// newest first, as SandboxItems returns them.
	Written map[string][]json.RawMessage
}

// SessionCounter counts the live sessions of each integration across every
// process, and remembers the most ever live at once. An entry expires at the
// time it was last given, so a session whose process died stops counting.
// Sessions start counting through SessionStarter.
type SessionCounter interface {
	// RenewSandboxSession moves the expiry of a live session.
	RenewSandboxSession(ctx context.Context, integration, id string, expiresAt time.Time) error
	// CloseSandboxSession stops counting session id.
	CloseSandboxSession(ctx context.Context, integration, id string) error
	// SandboxSessions returns the live count at now and the recorded maximum.
	SandboxSessions(ctx context.Context, integration string, now time.Time) (live, maximum int, err error)
	// ResetSandboxSessions sets the recorded maximum to the live count at now.
	ResetSandboxSessions(ctx context.Context, integration string, now time.Time) error
}

// GrantStore keeps the tokens logins hand out, so that any process can refresh
// or revoke them. Only hashes of tokens are stored. Grants are saved through
// SessionStarter.
type GrantStore interface {
	// SandboxGrant returns the grant with id; nil when there is none.
	SandboxGrant(ctx context.Context, id string) (*Grant, error)
	// RotateSandboxGrant replaces the tokens of an active grant whose current
	// refresh token hashes to refreshHash, and reports whether it did.
	RotateSandboxGrant(ctx context.Context, id, refreshHash, newAccessHash, newRefreshHash string) (bool, error)
	// RevokeSandboxGrant marks the grant revoked when tokenHash is the hash of
	// its current access or refresh token, and reports whether it did.
	RevokeSandboxGrant(ctx context.Context, id, tokenHash string, at time.Time) (bool, error)
}

// WriteRecord is one entry of an account's write log: the write an operation
// made, under the idempotency key that makes it happen once.
type WriteRecord struct {
	IdempotencyKey string          `json:"idempotencyKey"`
	Resource       string          `json:"resource"`
	Action         string          `json:"action"`
	Result         json.RawMessage `json:"result"`
	At             time.Time       `json:"at"`
}

// Grant statuses.
const (
	GrantActive  = "active"
	GrantRevoked = "revoked"
)

// Grant is what one successful login handed out: an access and a refresh
// token (stored as hashes), and whether they still work. Refreshing replaces
// both tokens of the grant; revoking ends it.
type Grant struct {
	ID          string    `json:"id"`
	OrgID       string    `json:"orgId"`
	Integration string    `json:"integration"`
	Username    string    `json:"username"`
	AccessHash  string    `json:"-"`
	RefreshHash string    `json:"-"`
	Status      string    `json:"status"`
	Refreshes   int       `json:"refreshes"`
	IssuedAt    time.Time `json:"issuedAt"`
	RevokedAt   time.Time `json:"revokedAt,omitzero"`
}
