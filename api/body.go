package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/linkflow/linkflow"
)

// readJSONBody reads a JSON request body of at most MaxBodyBytes: 413 when it
// is larger, 415 when it says it is not JSON, 400 when it is not JSON.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !isJSONSuffix(mt)) {
			return nil, linkflow.Errorf(linkflow.EUnsupportedMedia, "Content-Type must be application/json.")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, linkflow.Errorf(linkflow.EPayloadTooLarge, "The request body is larger than %d bytes.", s.cfg.MaxBodyBytes)
		}
		return nil, linkflow.Errorf(linkflow.EBadRequest, "The request body could not be read.")
	}
	if !json.Valid(body) {
		return nil, linkflow.Errorf(linkflow.EBadRequest, "The request body is not valid JSON.")
	}
	return body, nil
}

func isJSONSuffix(mt string) bool { return len(mt) > 5 && mt[len(mt)-5:] == "+json" }

// decodeObject decodes a JSON object into its members, keeping each raw.
func decodeObject(b []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func isNull(b json.RawMessage) bool {
	return len(b) == 0 || bytes.Equal(bytes.TrimSpace(b), []byte("null"))
}
