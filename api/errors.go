package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
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

// writeError writes err in the error envelope. Errors that are not
// *linkflow.Error are internal: logged with the request id, never shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var le *linkflow.Error
	switch {
	case errors.As(err, &le):
	case errors.Is(err, linkflow.ErrNotFound):
		le = linkflow.Errorf(linkflow.ENotFound, "Not found.")
	case errors.Is(err, linkflow.ErrBadCursor):
		le = linkflow.Errorf(linkflow.EBadRequest, "The cursor is not valid.")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		le = linkflow.Errorf(linkflow.EBadRequest, "The request was canceled.")
	default:
		reqLog(r).Error("request failed", zap.Error(err))
		le = linkflow.Errorf(linkflow.EInternal, "An unexpected error occurred.")
	}
	status, ok := statusOf[le.Code]
	if !ok {
		status = http.StatusBadRequest
	}
	if le.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(le.RetryAfter))
	}
	writeJSON(w, status, envelope{Meta: meta{RequestID: requestID(r)},
		Error: errorBody{Code: le.Code, Message: le.Message, Detail: le.Detail, Issues: le.Issues}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"INTERNAL_SERVER_ERROR","message":"encoding failed"}}`, http.StatusInternalServerError)
		return
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
