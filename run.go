package linkflow

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// ConnectionWrite is the connection a successful link makes or renews.
type ConnectionWrite struct {
	// ID is the connection to write. Empty: the existing connection of the
	// same integration and username, or a new one.
	ID             string
	IntegrationID  string
	Username       string
	ExternalUserID string
	DisplayName    string
	WebhookURL     string
	Credentials    *Credentials
}

// Finished is the outcome of ending a link.
type Finished struct {
	OrgID  string
	LinkID string
	// EventID and EventType name the completion event.
	EventID   string
	EventType string
	// ConnectionID is the connection the link made or renewed, if any.
	ConnectionID string
	// Event is the event's message, recorded in the outbox, to publish.
	Event Message
	// ConnectionEvent is, when the link made an 'error' connection healthy
	// again, its connection.healthy event's message, recorded in the
	// outbox, to publish.
	ConnectionEvent Message
}

// Messages are the messages to publish: Event and ConnectionEvent, those
// that are set.
func (f *Finished) Messages() []Message {
	out := make([]Message, 0, 2)
	for _, m := range []Message{f.Event, f.ConnectionEvent} {
		if m.ID != "" {
			out = append(out, m)
		}
	}
	return out
}

// RunVerdict is what beginning a session attempt found.
type RunVerdict string

// Verdicts of beginning a session attempt.
const (
	// RunStart: the lease is taken; run the session.
	RunStart RunVerdict = "ok"
	// RunGone: the link does not exist (any more).
	RunGone RunVerdict = "gone"
	// RunDone: the link already finished; acknowledge and ignore.
	RunDone RunVerdict = "done"
	// RunNotClaimed: the link was never claimed; the message is bogus.
	RunNotClaimed RunVerdict = "not_claimed"
	// RunBusy: another worker holds the lease; try again after BusyFor.
	RunBusy RunVerdict = "busy"
)

// Run is a session attempt a worker has begun: the link, its opened
// arguments and password, and the lease token that fences its writes.
type Run struct {
	Verdict RunVerdict
	BusyFor time.Duration

	Link      *Link
	Arguments []json.RawMessage
	Password  string
	// PasswordsRefused is how many passwords in a row the provider refused
	// in earlier attempts: the session asks for the password again before
	// it logs in (Password is empty then). 0 when Password worked or was
	// not tried.
	PasswordsRefused int
	// ConnectionID is the connection this link will renew: the one it names,
	// or the existing one for the same integration and username.
	ConnectionID string
	Token        string
}

// LeaseRef names a lease a worker holds.
type LeaseRef struct {
	OrgID, LinkID, Token string
}

// LeaseState is what renewing a lease found.
type LeaseState struct {
	Lost            bool
	CancelRequested bool
	InputReady      bool
}

// SlotRef names a held slot, and the link whose session holds it.
type SlotRef struct{ Integration, Holder, LinkID string }

// NewLeaseToken returns a new lease token: 96 random bits in hex, unique to
// one holder of a link's lease or a fleet slot.
func NewLeaseToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
