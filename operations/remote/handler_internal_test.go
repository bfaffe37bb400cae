package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

// A provider's untyped error is answered with a fixed message: its text (an
// internal address, a key in a query string) would reach linkflow's
// customer in the link's error. A typed error keeps its message.
func TestHandlerKeepsUntypedErrorTextToItself(t *testing.T) {
	h := &Handler{log: zap.NewNop()}
	for _, tt := range []struct {
		err  error
		code linkflow.FailureCode
		msg  string
	}{
		{fmt.Errorf(`Post "https://billing.internal:8443/api?key=s3cret": dial tcp 10.0.0.5:8443: connection refused`),
			linkflow.FailureProviderUnavailable, "the provider failed"},
		{fmt.Errorf("call billing: %w", context.DeadlineExceeded), linkflow.FailureProviderTimeout, "the provider did not answer in time"},
		{operations.NewError(linkflow.FailureDeclined, "card declined"), linkflow.FailureDeclined, "card declined"},
	} {
		rec := httptest.NewRecorder()
		h.answer(rec, httptest.NewRequest(http.MethodPost, "/execute", nil), nil, tt.err)
		var e ErrorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Error.Code != string(tt.code) || e.Error.Message != tt.msg || strings.Contains(rec.Body.String(), "s3cret") {
			t.Errorf("%v answered %s", tt.err, rec.Body.String())
		}
	}
}
