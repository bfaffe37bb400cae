package remote

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/linkflow/linkflow/operations"
)

// FuzzAnswer feeds decodeAnswer whatever a remote provider could answer.
// Properties: no panic; a failed answer is always an *operations.Error with
// a known code, a bounded message and no negative Retry-After; a good answer
// either decodes or is a typed transient error, and a decoded result is
// valid JSON (the worker splices it into the link's result as it is).
func FuzzAnswer(f *testing.F) {
	f.Add(200, "", []byte(`{"result":{"paymentMethods":[]}}`))
	f.Add(200, "", []byte(`{"result":`))
	f.Add(422, "", []byte(`{"error":{"code":"DECLINED","message":"no"}}`))
	f.Add(503, "2", []byte(`{"error":{"code":"X","message":"m","transient":true,"retryAfterMs":-5}}`))
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`oops`))
	f.Add(302, "", []byte{})
	f.Fuzz(func(t *testing.T, status int, retry string, body []byte) {
		h := http.Header{}
		h.Set("Retry-After", retry)
		var res ExecuteResponse
		err := decodeAnswer(PathExecute, status, h, body, &res)
		if status < 200 || status > 299 {
			var pe *operations.Error
			if !errors.As(err, &pe) {
				t.Fatalf("status %d: %v is not an *operations.Error", status, err)
			}
			if pe.RetryAfter < 0 || len(pe.Message) > 2*(maxMessage+len("…"))+2 {
				t.Fatalf("status %d: retry %v, message %d bytes", status, pe.RetryAfter, len(pe.Message))
			}
			if pe.Code == "" {
				t.Fatalf("status %d: an error without a code", status)
			}
			return
		}
		if err != nil {
			var pe *operations.Error
			if !errors.As(err, &pe) || !pe.Transient {
				t.Fatalf("a bad good answer: %v, want a transient *operations.Error", err)
			}
			return
		}
		if len(res.Result) > 0 && !json.Valid(res.Result) {
			t.Fatalf("decoded an invalid result %q", res.Result)
		}
	})
}
