package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/linkflow/linkflow"
)

// MaxJSONDepth bounds how deeply a request body's arrays and objects nest.
const MaxJSONDepth = 32

// readJSONBody reads a JSON request body of at most MaxBodyBytes: 413 when it
// is larger, 415 when it says it is not JSON, 400 when it is not JSON, nests
// deeper than MaxJSONDepth or repeats a key within an object.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := jsonContentType(r); err != nil {
		return nil, err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	return body, nil
}

// jsonContentType is 415 for a request that says its body is not JSON.
func jsonContentType(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !isJSONSuffix(mt)) {
			return linkflow.Errorf(linkflow.EUnsupportedMedia, "Content-Type must be application/json.")
		}
	}
	return nil
}

// readBody reads a request body of at most MaxBodyBytes: 413 when it is
// larger.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, linkflow.Errorf(linkflow.EPayloadTooLarge, "The request body is larger than %d bytes.", s.cfg.MaxBodyBytes)
		}
		return nil, linkflow.Errorf(linkflow.EBadRequest, "The request body could not be read.")
	}
	return body, nil
}

func isJSONSuffix(mt string) bool { return len(mt) > 5 && mt[len(mt)-5:] == "+json" }

// checkJSON accepts one JSON value that nests at most MaxJSONDepth levels and
// has no key twice in one object (a repeated key is ambiguous: parsers
// disagree on which one wins). Once encoding/json has found b valid, one
// pass over its bytes finds the nesting and the keys: a json.Decoder's
// tokens did the same at four times the cost, an allocation per token, on
// every request that has a body.
func checkJSON(b []byte) error {
	if !json.Valid(b) {
		return linkflow.Errorf(linkflow.EBadRequest, "The request body is not valid JSON.")
	}
	type frame struct {
		object bool
		keys   objectKeys
	}
	var stack []frame
	wantKey := false // the next string is a key of the innermost object
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{', '[':
			if len(stack) == MaxJSONDepth {
				return linkflow.Errorf(linkflow.EBadRequest, "The request body nests arrays and objects more than %d levels deep.", MaxJSONDepth)
			}
			stack = append(stack, frame{object: c == '{'})
			wantKey = c == '{'
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			wantKey = stack[len(stack)-1].object
		case '"':
			end := stringEnd(b, i)
			if wantKey {
				if k, ok := stack[len(stack)-1].keys.add(b[i : end+1]); !ok {
					return linkflow.Errorf(linkflow.EBadRequest, "The request body has the key %s twice in one object.", quoteShort(k))
				}
				wantKey = false
			}
			i = end
		}
	}
	return nil
}

// stringEnd returns the index of the quote that closes the string of valid
// JSON b that opens at i.
func stringEnd(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
}

// objectKeys are the keys one object has had so far, decoded: a slice while
// they are few, a map beyond that, so a body of many keys costs no more than
// linear time.
type objectKeys struct {
	few  [][]byte
	many map[string]bool
}

// add records the key quoted (with its quotes, as in the body) and reports
// false, with the key, when the object had it already. Keys are compared as
// they decode, so "a" and "\u0061" are the same key.
func (o *objectKeys) add(quoted []byte) (string, bool) {
	k := quoted[1 : len(quoted)-1]
	if !plainKey(quoted) {
		var d string
		_ = json.Unmarshal(quoted, &d) // valid: json.Valid has seen it
		k = []byte(d)
	}
	if o.many != nil {
		if o.many[string(k)] {
			return string(k), false
		}
		o.many[string(k)] = true
		return "", true
	}
	for _, f := range o.few {
		if bytes.Equal(f, k) {
			return string(k), false
		}
	}
	o.few = append(o.few, k)
	if len(o.few) > 16 {
		o.many = make(map[string]bool, 2*len(o.few))
		for _, f := range o.few {
			o.many[string(f)] = true
		}
		o.few = nil
	}
	return "", true
}

// plainKey reports whether a quoted key decodes to its bytes as they are:
// ASCII without escapes.
func plainKey(quoted []byte) bool {
	for _, c := range quoted[1 : len(quoted)-1] {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// quoteShort quotes s for a message, cut to a readable length.
func quoteShort(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

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

// unknownFields returns an issue for each member of m that is not one of
// known, sorted, each path under prefix ("" at the top): a typo never
// silently does nothing.
func unknownFields(m map[string]json.RawMessage, prefix string, known ...string) []linkflow.Issue {
	var names []string
	for k := range m {
		if !slices.Contains(known, k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	issues := make([]linkflow.Issue, 0, len(names))
	for _, k := range names {
		msg := "is not a known field; the fields are " + strings.Join(known, ", ")
		if len(known) == 0 {
			msg = "is not a known field; this takes none"
		}
		issues = append(issues, linkflow.Issue{Path: prefix + quoteKey(k), Message: msg})
	}
	return issues
}

// quoteKey keeps a field name readable and bounded in an issue path.
func quoteKey(k string) string {
	if utf8.RuneCountInString(k) > 64 {
		return string([]rune(k)[:64]) + "…"
	}
	return k
}

// validation returns the 400 of a request with issues, nil without any.
// badField is a validation error with one problem.
func badField(path, msg string) error {
	return validation([]linkflow.Issue{{Path: path, Message: msg}})
}

func validation(issues []linkflow.Issue) error {
	if len(issues) == 0 {
		return nil
	}
	e := linkflow.Errorf(linkflow.EBadRequest, "Validation failed.")
	e.Issues = issues
	return e
}

// tooLong reports whether s has more than max characters (not bytes).
func tooLong(s string, max int) bool {
	return len(s) > max && utf8.RuneCountInString(s) > max
}

// noBody checks the body of an endpoint that takes none: nothing, or an
// empty JSON object. Fields are refused like unknown fields anywhere, so
// that a client that thinks it passes something learns it does not; a body
// too large, or that says it is not JSON, is refused as on any endpoint
// (413, 415). An empty one is nothing, whatever its Content-Type.
func (s *Server) noBody(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := jsonContentType(r); err != nil {
		return err
	}
	m, ok := decodeObject(body)
	if !ok {
		return linkflow.Errorf(linkflow.EBadRequest, "This endpoint takes no request body.")
	}
	if issues := unknownFields(m, ""); len(issues) > 0 {
		e := linkflow.Errorf(linkflow.EBadRequest, "This endpoint takes no request body fields.")
		e.Issues = issues
		return e
	}
	return nil
}
