package linkflow

import (
	"encoding/json"
	"net/url"
	"slices"
	"time"
)

// Status is where a link is in its lifecycle:
//
//	pending -> claimed -> running (<-> awaiting_input) -> succeeded | failed
//	pending -> expired
//	pending | claimed -> canceled
type Status string

// The statuses of a link.
const (
	StatusPending       Status = "pending"
	StatusClaimed       Status = "claimed"
	StatusRunning       Status = "running"
	StatusAwaitingInput Status = "awaiting_input"
	StatusSucceeded     Status = "succeeded"
	StatusFailed        Status = "failed"
	StatusExpired       Status = "expired"
	StatusCanceled      Status = "canceled"
)

// Terminal reports whether a link in this status has ended for good.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusExpired, StatusCanceled:
		return true
	}
	return false
}

// Statuses are the statuses of a link, in lifecycle order.
var Statuses = []Status{StatusPending, StatusClaimed, StatusRunning, StatusAwaitingInput,
	StatusSucceeded, StatusFailed, StatusExpired, StatusCanceled}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Operation is one step of a link: an action on a resource of the link's
// integration. Arguments are only present on the way in; they are never
// returned by the API.
type Operation struct {
	Resource  string          `json:"resource"`
	Action    string          `json:"action"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// LinkError is why a link failed. OperationIndex is set when the failure
// happened in a specific operation. It is an error, so that a session can
// end with it.
type LinkError struct {
	Code           FailureCode `json:"code"`
	Message        string      `json:"message"`
	OperationIndex *int        `json:"operationIndex,omitempty"`
}

func (e *LinkError) Error() string { return string(e.Code) + ": " + e.Message }

// ChallengeCredentials is the type of the challenge that asks the end user
// for the password again after the provider refused it; its answer is the
// password. Other types are the provider's own (otp, ...).
const ChallengeCredentials = "credentials"

// Challenge is a question the provider asked during login (an OTP, say) that
// the end user must answer before the link can go on.
type Challenge struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Message      string    `json:"message"`
	ExpiresAt    time.Time `json:"-"`
	AttemptsLeft int       `json:"attemptsLeft"`
	// LastError is set when the previous answer was wrong.
	LastError string `json:"lastError,omitempty"`
}

// Link is an account-connection intent: which integration, which operations,
// and everything that has happened to it. Secret parts (operation arguments,
// the end user's password) are not part of Link: they live sealed in the store.
type Link struct {
	ID               string
	OrgID            string
	IntegrationID    string
	Operations       []Operation // without arguments
	Status           Status
	WebhookURL       string
	ReturnURL        string // as given at creation, without linkId
	ExternalUserID   string
	Description      string
	RequiredUsername string
	Debug            bool
	// OwnerUserID and OwnerEmail name the user who created the link with an
	// access token of theirs (the password grant); empty when an API key did
	// (seed 000's owner).
	OwnerUserID string
	OwnerEmail  string
	// Consent words, per operation, what its arguments commit the end user
	// to beyond the action's description ("Visa ending in 1111"; "" for
	// nothing); the hosted page shows it. Never a secret.
	Consent   []string
	Verifier  string
	ClaimCode string // only filled while the link is open
	// RequestedConnectionID names a connection this link renews.
	RequestedConnectionID string
	ConnectionID          string // the connection a successful link made or renewed
	Username              string
	CreatedAt             time.Time
	ExpiresAt             time.Time
	ClaimedAt             time.Time
	StartedAt             time.Time
	CompletedAt           time.Time
	Result                json.RawMessage
	Error                 *LinkError
	Challenge             *Challenge
	CancelRequested       bool
	Attempts              int
	Version               int64
}

// EffectiveStatus is the status a reader must see at now: a pending link past
// its expiry is expired even before the sweeper has recorded it.
func (l *Link) EffectiveStatus(now time.Time) Status {
	if l.Status == StatusPending && !l.ExpiresAt.IsZero() && !now.Before(l.ExpiresAt) {
		return StatusExpired
	}
	return l.Status
}

// Open reports whether the end user can still claim the link.
func (l *Link) Open(now time.Time) bool { return l.EffectiveStatus(now) == StatusPending }

// ReturnURLWith returns the link's return URL with query parameters added, or
// "" when the link has none.
func (l *Link) ReturnURLWith(params url.Values) string {
	if l.ReturnURL == "" {
		return ""
	}
	u, err := url.Parse(l.ReturnURL)
	if err != nil {
		return ""
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// AppClipURL is the end user's entry point:
// {publicURL}/link/{linkId}?code={claimCode}.
func AppClipURL(publicURL, linkID, claimCode string) string {
	return publicURL + "/link/" + url.PathEscape(linkID) + "?code=" + url.QueryEscape(claimCode)
}

// Millis converts t to epoch milliseconds, with nil for the zero time.
func Millis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// FromMillis converts epoch milliseconds to a time, 0 to the zero time.
func FromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// NewLink is what a customer asks for when creating a link. Operations carry
// their arguments, which are sealed and never returned again.
type NewLink struct {
	OrgID            string
	IntegrationID    string
	Operations       []Operation
	WebhookURL       string
	ReturnURL        string
	ExternalUserID   string
	Description      string
	RequiredUsername string
	ConnectionID     string
	Debug            bool
	// OwnerUserID and OwnerEmail name the user creating the link, if a user
	// is (Link.OwnerUserID).
	OwnerUserID string
	OwnerEmail  string
	// Consent is Link.Consent, from the operations' arguments.
	Consent   []string
	ExpiresIn time.Duration
	// IdempotencyKey and RequestHash make a retried create return the first
	// response; the same key with another RequestHash is a conflict.
	IdempotencyKey string
	RequestHash    string
	// Response renders the body to store for idempotent replays.
	Response func(*Link) ([]byte, error)
}

// Created is the outcome of CreateLink. Replayed is set when an earlier
// request with the same Idempotency-Key created the link; Response is then the
// first response, byte for byte.
type Created struct {
	Link     *Link
	Response []byte
	Replayed bool
}

// Claim is the outcome of a successful claim.
type Claim struct {
	OrgID         string
	IntegrationID string
	ExpiresAt     time.Time
	// Message is the claimed message, recorded in the outbox, to publish.
	Message Message
}

// Sweep is what one round of a store's link upkeep did: the links that
// expired (their events to publish), how many index entries of links past
// their retention it removed, and the links it could not read (corrupt, or
// sealed with a key that is gone), which it took off the expiry schedule so
// that they do not stop it; each with why.
type Sweep struct {
	Expired []*Finished
	// Overdue are claimed links that failed because no session ended them
	// by their deadline (with their link.failed events, to publish).
	Overdue    []*Finished
	Pruned     int
	Unreadable map[string]error
}

// CancelResult says what a cancel did: Canceled when the link ended at once
// (it was pending or claimed), Requested when a running link will stop before
// its next operation.
type CancelResult struct {
	Link      *Link
	Canceled  bool
	Requested bool
	// Finished names the link.canceled event when Canceled.
	Finished *Finished
}

// LinkFilter narrows a link listing. Empty fields match everything.
type LinkFilter struct {
	Status         Status
	IntegrationID  string
	ExternalUserID string
	// ClaimCodes opens the claim codes of pending links, for a caller
	// allowed to see them; without it they are left out.
	ClaimCodes bool
}
