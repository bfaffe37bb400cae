package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// Response is an HTTP response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// String is the status and the body, for a test's failure message.
func (r *Response) String() string {
	if r == nil {
		return "no response"
	}
	return r.Status + " " + string(r.Body)
}

// JSON decodes the body into v, failing the test when it cannot.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v (body %s)", r.Request.URL, err, r.Body)
	}
}

// Do sends a request and reads the response, failing the test when it
// cannot. It calls t.Fatal: from a goroutine of the test's own, use Send.
func Do(t testing.TB, method, url, key string, body any) *Response {
	t.Helper()
	r, err := Send(method, url, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Send sends a request (body JSON-encoded unless it is a string or bytes,
// key as a bearer token) and reads the response.
func Send(method, url, key string, body any) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewBuffer(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewBuffer(buf)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Response: resp, Body: b}, nil
}
