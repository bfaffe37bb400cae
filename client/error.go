package client

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Codes of the error envelope (Error.Code). They are stable: branch on them.
const (
	CodeBadRequest           = "BAD_REQUEST"
	CodeUnauthorized         = "UNAUTHORIZED"
	CodeForbidden            = "FORBIDDEN"
	CodeNotFound             = "NOT_FOUND"
	CodeMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	CodeConflict             = "CONFLICT_ERROR"
	CodePayloadTooLarge      = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	CodeUnprocessableEntity  = "UNPROCESSABLE_ENTITY"
	CodeTooManyRequests      = "TOO_MANY_REQUESTS"
	CodeInternalServerError  = "INTERNAL_SERVER_ERROR"
	CodeServiceUnavailable   = "SERVICE_UNAVAILABLE"
)

// Error is an answer other than 2xx. Match it with errors.As:
//
//	var e *client.Error
//	if errors.As(err, &e) && e.Code == client.CodeConflict { ... }
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the envelope's error.code, such as NOT_FOUND; empty when the
	// answer was not linkflow's envelope (a proxy's 502, say).
	Code string
	// Message is for people; Detail adds specifics when there are some (for
	// an answer that was not the envelope, the start of its body).
	Message string
	Detail  string
	// Issues lists every validation problem of a 400.
	Issues []Issue
	// RequestID finds the request in linkflow's logs: meta.request_id, or
	// the X-Request-Id header.
	RequestID string
	// RetryAfter is the answer's Retry-After (429, 503), 0 without one.
	RetryAfter time.Duration

	method, path string
}

// Issue is one validation problem: where (operations[1].arguments.cardNumber;
// empty for the whole body) and what.
type Issue struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "linkflow: %s %s: %d", e.method, e.path, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Detail != "" {
		b.WriteString(" (" + e.Detail + ")")
	}
	for i, is := range e.Issues {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + cmp.Or(is.Path, "body") + " " + is.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// IsNotFound reports whether err is a 404 NOT_FOUND answer: no such record
// in the key's organization (or a wrong claim code).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeNotFound
}

// envelope is the error answer of every 4xx and 5xx.
type envelope struct {
	Meta struct {
		RequestID string `json:"request_id"`
	} `json:"meta"`
	Error struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Detail  string  `json:"detail"`
		Issues  []Issue `json:"issues"`
	} `json:"error"`
}
