package linkflow

import (
	"errors"
	"fmt"
	"time"
)

// API error codes: the stable SCREAMING_SNAKE codes of the error envelope
// (seed 000) that the HTTP layer answers with. Why a link failed is another
// vocabulary: FailureCode (failure.go).
const (
	EBadRequest         = "BAD_REQUEST"
	EUnauthorized       = "UNAUTHORIZED"
	EForbidden          = "FORBIDDEN"
	ENotFound           = "NOT_FOUND"
	EConflict           = "CONFLICT_ERROR"
	EUnprocessable      = "UNPROCESSABLE_ENTITY"
	ETooManyRequests    = "TOO_MANY_REQUESTS"
	EPayloadTooLarge    = "PAYLOAD_TOO_LARGE"
	EInternal           = "INTERNAL_SERVER_ERROR"
	EServiceUnavailable = "SERVICE_UNAVAILABLE"
	EUnsupportedMedia   = "UNSUPPORTED_MEDIA_TYPE"
	EMethodNotAllowed   = "METHOD_NOT_ALLOWED"
)

// Error is linkflow's error type: a stable code, a human message and an
// optional detail. Issues carries per-field validation problems.
type Error struct {
	Code    string
	Message string
	Detail  string
	Issues  []Issue
	// RetryAfter, when set, tells a client how long to wait (seconds).
	RetryAfter int
}

// Issue is one validation problem: where it is and what is wrong.
type Issue struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Detail)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrBadCursor is returned for a pagination cursor linkflow did not issue.
var ErrBadCursor = errors.New("bad cursor")

// ErrNotFound is returned when a record does not exist (or belongs to another
// organization, which callers must not be able to tell apart).
var ErrNotFound = errors.New("not found")

// ErrUnsealable is returned for a value sealed at rest that cannot be
// opened: sealed with a key the process is not given (then ErrUnknownKey
// too), or damaged.
var ErrUnsealable = errors.New("sealed value cannot be opened")

// ErrUnknownKey is returned with ErrUnsealable for a value sealed with an
// encryption key this process is not given: during a key roll, processes
// not rolled yet; or a key retired too early.
var ErrUnknownKey = errors.New("sealed with an encryption key this process is not given")

// ErrFenced is returned when a fenced write lost its fence: the lease token or
// the version it was given is no longer current.
var ErrFenced = errors.New("fenced: lease or version no longer current")

// ErrChanged is returned for a write whose content was built from a record
// that changed since it was read: nothing was written; build it again from
// the record as it is now.
var ErrChanged = errors.New("changed since it was read")

// ErrIdempotencyConflict is returned when an Idempotency-Key was already used
// with a different request.
var ErrIdempotencyConflict = errors.New("idempotency key already used with a different request")

// ErrUsernameMismatch is returned when a link that must be used with one
// username is claimed with another.
var ErrUsernameMismatch = errors.New("the link must be used with a different username")

// ErrWrongChallenge is returned for an answer to a challenge that is not the
// link's current one.
var ErrWrongChallenge = errors.New("not the link's current challenge")

// ErrLeaseHeld is returned for a change a session holding the link's lease
// must make itself.
var ErrLeaseHeld = errors.New("a session holds the link")

// ErrUnreadable is returned for a stored value linkflow cannot read: sealed
// with a key this process lacks, or corrupt. Asking again does not help.
var ErrUnreadable = errors.New("a stored value cannot be read")

// ErrChallengeExpired is returned for an answer to a challenge past its
// expiry: the session no longer waits for it.
var ErrChallengeExpired = errors.New("the challenge expired")

// ErrAlreadyAnswered is returned for a second answer to a challenge before
// the worker asked again: the first is being checked.
var ErrAlreadyAnswered = errors.New("the challenge was already answered")

// Actions on a link that its status may refuse (StateError.Action).
const (
	ActionClaim  = "claim"
	ActionCancel = "cancel"
	ActionInput  = "input"
	// ActionRedeliver: sending a link's event again.
	ActionRedeliver = "redeliver"
)

// StateError is returned when a link's status does not allow an action: a
// claim of a link that is not pending, a cancel of a finished one, input to
// one that is not waiting for any.
type StateError struct {
	Action string
	Status Status
}

func (e *StateError) Error() string {
	return fmt.Sprintf("cannot %s a link that is %s", e.Action, e.Status)
}

// LockedError is returned while a link refuses code guesses after too many
// wrong ones; RetryAfter says for how much longer.
type LockedError struct {
	RetryAfter time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many wrong codes for this link; retry in %s", e.RetryAfter)
}
