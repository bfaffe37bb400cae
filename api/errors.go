package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/webhooks"
)

// statusOf maps an error code to its HTTP status. This is the only place
// linkflow does that.
var statusOf = map[string]int{
	linkflow.EBadRequest:         http.StatusBadRequest,
	linkflow.EUnauthorized:       http.StatusUnauthorized,
	linkflow.EForbidden:          http.StatusForbidden,
	linkflow.ENotFound:           http.StatusNotFound,
	linkflow.EMethodNotAllowed:   http.StatusMethodNotAllowed,
	linkflow.EConflict:           http.StatusConflict,
	linkflow.EPayloadTooLarge:    http.StatusRequestEntityTooLarge,
	linkflow.EUnsupportedMedia:   http.StatusUnsupportedMediaType,
	linkflow.EUnprocessable:      http.StatusUnprocessableEntity,
	linkflow.ETooManyRequests:    http.StatusTooManyRequests,
	linkflow.EInternal:           http.StatusInternalServerError,
	linkflow.EServiceUnavailable: http.StatusServiceUnavailable,
}

type errorBody struct {
	Code    string           `json:"code"`
	Message string           `json:"message"`
	Detail  string           `json:"detail,omitempty"`
	Issues  []linkflow.Issue `json:"issues,omitempty"`
}

type envelope struct {
	Meta  meta      `json:"meta"`
	Error errorBody `json:"error"`
}

type meta struct {
	RequestID string `json:"request_id"`
}

// apiError turns what the layers below answered into a code and words:
// the only place that does. It returns nil for an error it does not know,
// which is internal.
func apiError(err error) *linkflow.Error {
	var (
		le     *linkflow.Error
		state  *linkflow.StateError
		locked *linkflow.LockedError
	)
	switch {
	case errors.As(err, &le):
		return le
	case isUnavailable(err):
		e := linkflow.Errorf(linkflow.EServiceUnavailable, "The service is temporarily unavailable. Retry in a few seconds.")
		e.RetryAfter = retryUnavailable
		return e
	case errors.Is(err, linkflow.ErrUnknownKey):
		// During a key roll, a process given the key answers: retry.
		e := linkflow.Errorf(linkflow.EServiceUnavailable, "A stored value is sealed with an encryption key this "+
			"linkflow process is not given: try again (a key roll may be under way).")
		e.RetryAfter = retryUnknownKey
		return e
	case errors.Is(err, linkflow.ErrNotFound):
		return linkflow.Errorf(linkflow.ENotFound, "Not found.")
	case errors.Is(err, linkflow.ErrBadCursor):
		return linkflow.Errorf(linkflow.EBadRequest, "The cursor is not valid.")
	case errors.As(err, &state):
		return linkflow.Errorf(linkflow.EConflict, "%s", stateMessage(state))
	case errors.As(err, &locked):
		e := linkflow.Errorf(linkflow.ETooManyRequests, "Too many wrong claim codes for this link. Retry later.")
		e.RetryAfter = int(locked.RetryAfter/time.Second) + 1
		return e
	case errors.Is(err, linkflow.ErrIdempotencyConflict):
		return linkflow.Errorf(linkflow.EConflict, "Idempotency-Key was already used with a different request body.")
	case errors.Is(err, linkflow.ErrUsernameMismatch):
		return linkflow.Errorf(linkflow.EUnprocessable, "This link must be used with a different username.")
	case errors.Is(err, linkflow.ErrWrongChallenge):
		return linkflow.Errorf(linkflow.EConflict, "This is not the current challenge.")
	case errors.Is(err, linkflow.ErrChallengeExpired):
		return linkflow.Errorf(linkflow.EConflict, "This challenge expired, and the session no longer waits for its answer.")
	case errors.Is(err, linkflow.ErrAlreadyAnswered):
		return linkflow.Errorf(linkflow.EConflict, "This challenge was already answered, and the answer is being checked. Wait for the session to ask again.")
	case errors.Is(err, linkflow.ErrFenced):
		return linkflow.Errorf(linkflow.EConflict, "The record changed while it was being updated; retry.")
	case errors.Is(err, linkflow.ErrNoTarget):
		return linkflow.Errorf(linkflow.EConflict, "The link has no webhookUrl, so its event is not delivered; it is listed by GET /v1/events.")
	case errors.Is(err, webhooks.ErrNotDispatched):
		return linkflow.Errorf(linkflow.EConflict, "The link's event has not reached the webhook dispatcher yet; it will be delivered shortly.")
	}
	return nil
}

// unavailable is what the error of a dependency that cannot serve for now
// says of itself (store.ErrUnavailable: Redis unreachable, not answering in
// time, loading its data, failing over): the same request may succeed in a
// moment.
type unavailable interface{ Unavailable() bool }

// retryUnavailable is the Retry-After (seconds) of an answer refused because
// a dependency is unavailable.
const retryUnavailable = 2

// retryUnknownKey is the Retry-After (seconds) of an answer refused because
// a value is sealed with an encryption key this process is not given.
const retryUnknownKey = 5

// logUnknownKey logs, at warn, a refusal for a value sealed with a key this
// process is not given: the error names the key's id, never a secret.
func logUnknownKey(r *http.Request, err error) {
	reqLog(r).Warn("request refused: a stored value is sealed with an encryption key this process is not given", zap.Error(err))
}

func isUnavailable(err error) bool {
	var u unavailable
	return errors.As(err, &u) && u.Unavailable()
}

// stateMessage words a link status that refused an action.
func stateMessage(e *linkflow.StateError) string {
	switch e.Action {
	case linkflow.ActionClaim:
		switch e.Status {
		case linkflow.StatusExpired:
			return "Link has expired."
		case linkflow.StatusCanceled:
			return "Link was canceled."
		}
		return fmt.Sprintf("Link was already claimed (status %s).", e.Status)
	case linkflow.ActionCancel:
		return fmt.Sprintf("Link has already finished (status %s).", e.Status)
	case linkflow.ActionInput:
		return fmt.Sprintf("Link is not waiting for input (status %s).", e.Status)
	case linkflow.ActionRedeliver:
		return fmt.Sprintf("The link has not ended (status %s): it has no event to deliver yet.", e.Status)
	}
	return fmt.Sprintf("Link is %s.", e.Status)
}

// codeOf is the code apiError gives err; EInternal for an unknown error.
func codeOf(err error) string {
	if le := apiError(err); le != nil {
		return le.Code
	}
	return linkflow.EInternal
}

// writeError writes err in the error envelope. Errors apiError does not
// know are internal: logged with the request id, never shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	le := apiError(err)
	switch {
	case le != nil && isUnavailable(err):
		// Warn, not Error: the outage is the news, not this request.
		reqLog(r).Warn("request refused: a dependency is unavailable", zap.Error(err))
	case le != nil && errors.Is(err, linkflow.ErrUnknownKey):
		logUnknownKey(r, err)
	case le != nil:
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		le = linkflow.Errorf(linkflow.EBadRequest, "The request was canceled.")
	default:
		reqLog(r).Error("request failed", zap.Error(err))
		le = linkflow.Errorf(linkflow.EInternal, "An unexpected error occurred.")
	}
	writeJSON(w, r, errorStatus(w, le, http.StatusBadRequest), envelope{Meta: meta{RequestID: requestID(r)},
		Error: errorBody{Code: le.Code, Message: le.Message, Detail: le.Detail, Issues: le.Issues}})
}

// errorStatus is the HTTP status of le, or fallback for a code without one
// of its own, with le's Retry-After set on w.
func errorStatus(w http.ResponseWriter, le *linkflow.Error, fallback int) int {
	if le.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(le.RetryAfter))
	}
	if status, ok := statusOf[le.Code]; ok {
		return status
	}
	return fallback
}

// writeJSON answers v as JSON. A v that does not encode (a stored
// json.RawMessage gone bad) is logged and answered as an internal error in
// the envelope.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		reqLog(r).Error("response did not encode", zap.Error(err))
		b, _ = json.Marshal(envelope{Meta: meta{RequestID: requestID(r)},
			Error: errorBody{Code: linkflow.EInternal, Message: "An unexpected error occurred."}})
		status = http.StatusInternalServerError
	}
	writeRawJSON(w, status, b)
}

func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}
