package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A value that does not encode (a stored result gone bad) is answered in the
// envelope, as JSON, with the request's id: never as text.
func TestWriteJSONThatDoesNotEncode(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/v1/links/link_x", nil)
	r = r.WithContext(context.WithValue(r.Context(), ctxRequestID, "req_abc"))
	w := httptest.NewRecorder()
	writeJSON(w, r, http.StatusOK, map[string]any{"result": json.RawMessage("{not json")})
	var env struct {
		Meta struct {
			RequestID string `json:"request_id"`
		} `json:"meta"`
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("%v: %q", err, w.Body)
	}
	if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Type") != "application/json" ||
		env.Error.Code != "INTERNAL_SERVER_ERROR" || env.Meta.RequestID != "req_abc" {
		t.Fatalf("%d %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}
