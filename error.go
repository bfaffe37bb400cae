package linkflow

import (
	"errors"
	"fmt"
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

// ErrorCode returns the code of err when it is (or wraps) an *Error, and
// EInternal otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of err when it is an *Error, and a generic
// message otherwise, so internal details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An unexpected error occurred."
}

// ErrBadCursor is returned for a pagination cursor linkflow did not issue.
var ErrBadCursor = errors.New("bad cursor")

// ErrNotFound is returned when a record does not exist (or belongs to another
// organization, which callers must not be able to tell apart).
var ErrNotFound = errors.New("not found")

// ErrFenced is returned when a fenced write lost its fence: the lease token is
// no longer current, or the record changed since it was read.
var ErrFenced = errors.New("fenced: lease or version no longer current")
