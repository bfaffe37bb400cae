package operations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkflow/linkflow"
)

// Error is a provider's typed failure. Code is one of linkflow's failure
// codes (linkflow.FailureCode): the first group of them is permanent and
// fails the link at once; the transient ones make the worker run the session
// again with backoff. RetryAfter is the provider's hint for when (zero when
// it gave none).
type Error struct {
	Code       linkflow.FailureCode
	Message    string
	Transient  bool
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// NewError returns an *Error for code, transient when the code is.
func NewError(code linkflow.FailureCode, message string) *Error {
	return &Error{Code: code, Message: message, Transient: code.Transient()}
}

// InvalidCredentials says the provider did not accept the username and
// password.
func InvalidCredentials(msg string) *Error { return NewError(linkflow.FailureInvalidCredentials, msg) }

// AccountLocked says the provider locked the account.
func AccountLocked(msg string) *Error { return NewError(linkflow.FailureAccountLocked, msg) }

// ChallengeFailed says the answer to a challenge was wrong.
func ChallengeFailed(msg string) *Error { return NewError(linkflow.FailureChallengeFailed, msg) }

// Declined says the provider declined the operation (a card, say).
func Declined(msg string) *Error { return NewError(linkflow.FailureDeclined, msg) }

// Rejected says the provider rejected the request as invalid.
func Rejected(msg string) *Error { return NewError(linkflow.FailureRejected, msg) }

// Unavailable says the provider is down for now.
func Unavailable(msg string) *Error { return NewError(linkflow.FailureProviderUnavailable, msg) }

// Timeout says the provider did not answer in time.
func Timeout(msg string) *Error { return NewError(linkflow.FailureProviderTimeout, msg) }

// RateLimited says the provider asks to slow down, for retryAfter if known.
func RateLimited(msg string, retryAfter time.Duration) *Error {
	e := NewError(linkflow.FailureRateLimited, msg)
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
		return Timeout(err.Error())
	}
	return Unavailable(err.Error())
}
