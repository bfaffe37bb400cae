package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// request is one API call, tried once or more by do.
type request struct {
	method string
	path   string // escaped, from the API's root: "/v1/links/link_..."
	query  url.Values
	body   []byte
	// contentType of body: application/json unless set.
	contentType string
	// auth sends Config.APIKey. The end user's endpoints and the token
	// endpoint never get it.
	auth           bool
	idempotencyKey string
	// idempotent says a repeat cannot do a thing twice, so 503 and
	// transport errors are tried again; other calls only after a 429.
	idempotent bool
}

// jsonRequest is a request with v marshalled as its JSON body.
func jsonRequest(method, path string, v any) (*request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s %s: %w", method, path, err)
	}
	return &request{method: method, path: path, body: b, auth: true}, nil
}

// transportError is a failure to get an answer: nothing says whether
// linkflow acted on the request.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// do sends r, tries it again as the package documentation says, and decodes
// a 2xx body into out (unless out is nil). It returns the answer's headers.
func (c *Client) do(ctx context.Context, r *request, out any) (http.Header, error) {
	for attempt := 1; ; attempt++ {
		hdr, err := c.once(ctx, r, out)
		if err == nil {
			return hdr, nil
		}
		wait, retry := c.retryAfter(ctx, r, err, attempt)
		if !retry {
			return nil, c.wrap(r, err)
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("client: %s %s: %w (while waiting to retry after: %w)", r.method, r.path, serr, err)
		}
	}
}

func (c *Client) wrap(r *request, err error) error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return err // its message names the call already
	}
	return fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
}

// retryAfter says whether r is tried again after err, and after how long.
func (c *Client) retryAfter(ctx context.Context, r *request, err error, attempt int) (time.Duration, bool) {
	// A context already done is not checked here: the wait returns its
	// error at once, together with err.
	if attempt >= c.cfg.MaxAttempts {
		return 0, false
	}
	var apiErr *Error
	var tErr *transportError
	var wait time.Duration
	switch {
	case errors.As(err, &apiErr):
		switch {
		case apiErr.StatusCode == http.StatusTooManyRequests:
		case apiErr.StatusCode == http.StatusServiceUnavailable && r.idempotent:
		case (apiErr.StatusCode == http.StatusBadGateway || apiErr.StatusCode == http.StatusGatewayTimeout) && r.idempotent:
			// A proxy's or load balancer's (linkflow sends neither): it may
			// have passed the request on, so idempotent calls only.
		default:
			return 0, false
		}
		wait = apiErr.RetryAfter
	case errors.As(err, &tErr) && r.idempotent:
	default:
		return 0, false
	}
	if wait == 0 {
		wait = backoff(attempt, c.cfg.MaxRetryWait)
	}
	if wait > c.cfg.MaxRetryWait {
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return 0, false
	}
	return wait, true
}

// backoff is the wait before try attempt+1 when the answer named none:
// 250 ms doubled per try, capped, with jitter so that clients refused
// together do not come back together.
func backoff(attempt int, max time.Duration) time.Duration {
	d := min(250*time.Millisecond<<min(attempt-1, 10), max)
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// once sends r one time.
func (c *Client) once(ctx context.Context, r *request, out any) (http.Header, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if r.auth && c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	if r.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.idempotencyKey)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// net/http names the whole URL; its query may hold a claim code,
		// which must not end up in a log.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = c.base + r.path
		}
		return nil, &transportError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.apiError(r, resp)
	}
	if resp.Request != nil && resp.Request.Method != r.method {
		// An HTTPClient of the caller's followed a redirect that dropped
		// the request's method and body: its answer is not this call's.
		return nil, fmt.Errorf("client: the answer came from a redirect to %s %s (is BaseURL right?)",
			resp.Request.Method, resp.Request.URL.Redacted())
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &transportError{fmt.Errorf("read the answer: %w", err)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("decode the %d answer: %w", resp.StatusCode, err)
		}
	}
	return resp.Header, nil
}

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// apiError reads an error answer: linkflow's envelope, or whatever a proxy
// in front of it said.
func (c *Client) apiError(r *request, resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After")), method: r.method, path: r.path}
	var env envelope
	if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
		e.Code, e.Message, e.Detail, e.Issues = env.Error.Code, env.Error.Message, env.Error.Detail, env.Error.Issues
		e.RequestID = env.Meta.RequestID
	} else {
		e.Message = http.StatusText(resp.StatusCode)
		if s := string(bytes.TrimSpace(b)); s != "" {
			e.Detail = truncate(s, 200)
		}
		if resp.StatusCode/100 == 3 {
			// The Location (and a body naming it) holds the request's query,
			// which may hold a claim code: only its path goes in the error.
			e.Detail = "linkflow's API never redirects; is BaseURL right?"
			if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.String() != "" {
				loc.RawQuery, loc.Fragment, loc.User = "", "", nil
				e.Detail = truncate("redirected to "+loc.String()+": "+e.Detail, 300)
			}
		}
	}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("X-Request-Id")
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parseRetryAfter reads Retry-After: seconds (what linkflow sends) or an
// HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		// Longer than any wait a client takes (MaxRetryWait): kept
		// longest, not let overflow into a short one.
		return time.Duration(min(int64(n), int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
