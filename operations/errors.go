package operations

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Error codes a provider answers with. The first group is permanent: the link
// fails at once. The second is transient: the worker retries the whole session
// with backoff.
const (
	CodeInvalidCredentials = "INVALID_CREDENTIALS"
	CodeAccountLocked      = "ACCOUNT_LOCKED"
	CodeChallengeFailed    = "CHALLENGE_FAILED"
	CodeDeclined           = "DECLINED"
	CodeRejected           = "REJECTED"

	CodeUnavailable = "PROVIDER_UNAVAILABLE"
	CodeTimeout     = "PROVIDER_TIMEOUT"
	CodeRateLimited = "RATE_LIMITED"
)

// Error is a provider's typed failure. Code is one of the Code constants;
// Transient says whether trying the session again may succeed; RetryAfter is
// the provider's hint for when (zero when it gave none).
type Error struct {
	Code       string
	Message    string
	Transient  bool
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// transientCodes lists the codes that are transient by nature.
var transientCodes = map[string]bool{CodeUnavailable: true, CodeTimeout: true, CodeRateLimited: true}

// NewError returns an *Error for code, transient when the code is.
func NewError(code, message string) *Error {
	return &Error{Code: code, Message: message, Transient: transientCodes[code]}
}

// ErrInvalidCredentials and the other constructors name the typed errors.
func ErrInvalidCredentials(msg string) *Error { return NewError(CodeInvalidCredentials, msg) }

// ErrAccountLocked says the provider locked the account.
func ErrAccountLocked(msg string) *Error { return NewError(CodeAccountLocked, msg) }

// ErrChallengeFailed says the answer to a challenge was wrong.
func ErrChallengeFailed(msg string) *Error { return NewError(CodeChallengeFailed, msg) }

// ErrDeclined says the provider declined the operation (a card, say).
func ErrDeclined(msg string) *Error { return NewError(CodeDeclined, msg) }

// ErrRejected says the provider rejected the request as invalid.
func ErrRejected(msg string) *Error { return NewError(CodeRejected, msg) }

// ErrUnavailable says the provider is down for now.
func ErrUnavailable(msg string) *Error { return NewError(CodeUnavailable, msg) }

// ErrTimeout says the provider did not answer in time.
func ErrTimeout(msg string) *Error { return NewError(CodeTimeout, msg) }

// ErrRateLimited says the provider asks to slow down, for retryAfter if known.
func ErrRateLimited(msg string, retryAfter time.Duration) *Error {
	e := NewError(CodeRateLimited, msg)
	e.RetryAfter = retryAfter
	return e
}

// AsError returns the *Error in err's chain. Errors that are not typed are
// reported as transient unavailability: an unknown failure (a dropped
// connection, a context deadline) is worth one more try, within the worker's
// attempt limit.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout(err.Error())
	}
	return ErrUnavailable(err.Error())
}
