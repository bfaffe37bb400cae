package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// MaxResponseBody is how much of a receiver's response body an attempt keeps.
const MaxResponseBody = 2 << 10

// Result classes of an attempt, the "result" label of the attempts metric.
const (
	result2xx       = "2xx"
	result3xx       = "3xx"
	result4xx       = "4xx"
	resultGone      = "410"
	result429       = "429"
	result5xx       = "5xx"
	resultTimeout   = "timeout"
	resultRefused   = "connection_refused"
	resultBlocked   = "blocked"
	resultNetwork   = "network_error"
	resultInvalid   = "invalid_target"
	resultNoEvent   = "event_missing"
	resultCanceled  = "canceled"
	resultSignError = "sign_error"
	// resultHostDown: not sent, its host's breaker held it back too long.
	resultHostDown = "host_down"
	// resultNoSecret: not sent, the organization's signing secret could not
	// be read for too long.
	resultNoSecret = "no_secret"
)

// result is the outcome of one attempt.
type result struct {
	class      string
	statusCode int
	err        string
	body       string
	duration   time.Duration
	// retryAfter is the receiver's Retry-After, clamped; 0 when absent.
	retryAfter time.Duration
}

func (r *result) delivered() bool { return r.class == result2xx }

// permanent results end the delivery without retries.
func (r *result) permanent() bool {
	return r.class == resultGone || r.class == resultInvalid || r.class == resultNoEvent || r.class == resultHostDown ||
		r.class == resultNoSecret
}

// hostFailure reports whether the result says the host is unhealthy, which
// counts towards its circuit breaker: it did not answer, or answered that it
// is overloaded or unavailable. Other statuses (a 500 from one broken
// endpoint of a host many customers share, a 4xx) say nothing about the host.
func (r *result) hostFailure() bool {
	switch r.class {
	case resultTimeout, resultRefused, resultNetwork, result429:
		return true
	case result5xx:
		switch r.statusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

func newHTTPClient(c *Config, g *guard) *http.Client {
	t := &http.Transport{
		Proxy:                 nil, // never a proxy from the environment
		DialContext:           g.dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          c.Concurrency,
		MaxIdleConnsPerHost:   c.PerHostConcurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   c.ConnectTimeout,
		ResponseHeaderTimeout: c.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: t,
		Timeout:   c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is a failure, never followed
		},
	}
}

// send makes one attempt: POST the event body, byte for byte, signed at now.
func (d *Dispatcher) send(ctx context.Context, target *url.URL, ev *linkflow.StoredEvent, secrets []string, now time.Time) result {
	sig, err := d.signer.sign(secrets, ev.ID, now, ev.Body)
	if err != nil {
		return result{class: resultSignError, err: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(ev.Body))
	if err != nil {
		return result{class: resultInvalid, err: "invalid webhook URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	req.Header.Set(HeaderID, ev.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	// Where the request went decides whether its response may be kept.
	var remote net.Addr
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { remote = i.Conn.RemoteAddr() },
	}))
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		r := d.classifyError(ctx, err, remote)
		r.duration = time.Since(start)
		return r
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	// Read a little more so the connection can be reused, then let go.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	r := result{statusCode: resp.StatusCode, duration: time.Since(start)}
	// The delivery log shows an organization the receiver's answer. An
	// address the allowlist (or dev) let through may be an internal service
	// that every organization can target: its answers are not kept.
	if d.cfg.AllowPrivate || public(remote) {
		r.body = string(body)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		r.class = result2xx
	case code == http.StatusGone:
		r.class = resultGone
		r.err = "410 Gone: the receiver asked to stop"
	case code >= 300 && code < 400:
		r.class = result3xx
		r.err = fmt.Sprintf("status %d: redirects are not followed", code)
	case code == http.StatusTooManyRequests:
		r.class = result429
		r.err = "status 429"
	case code >= 500:
		r.class = result5xx
		r.err = fmt.Sprintf("status %d", code)
	default:
		r.class = result4xx
		r.err = fmt.Sprintf("status %d", code)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), d.cfg.Now(), d.cfg.RetryAfterMin, d.cfg.RetryAfterMax)
	}
	return r
}

// classifyError turns a transport error into a result. The message goes to
// the organization's delivery log, so it never carries the URL (it may hold
// the customer's secrets), an address a name resolved to or the resolver's
// (the log would map an internal network), or what a server that is not
// public sent (remote: where the request went, if it got that far); the
// whole error goes to the dispatcher's debug log.
func (d *Dispatcher) classifyError(ctx context.Context, err error, remote net.Addr) result {
	if ctx.Err() != nil && d.attemptCtx.Err() != nil {
		return result{class: resultCanceled, err: "canceled: the dispatcher stopped"}
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	d.log.Debug("webhook attempt failed", zap.Error(inner))
	var blockedErr *BlockedAddressError
	var netErr net.Error
	switch {
	case errors.As(err, &blockedErr):
		return result{class: resultBlocked, err: "refused to connect: the host is a " + blockedErr.Reason +
			" address (only public addresses are allowed)"}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		msg := d.describe(inner, remote)
		if !strings.HasPrefix(msg, "DNS lookup failed") {
			msg = "timeout: " + msg
		}
		return result{class: resultTimeout, err: msg}
	case errors.Is(err, syscall.ECONNREFUSED):
		return result{class: resultRefused, err: "connection refused"}
	}
	return result{class: resultNetwork, err: d.describe(inner, remote)}
}

// maxErrorText bounds a transport error's words in the delivery log.
const maxErrorText = 300

// describe words a transport error for the delivery log (see classifyError).
func (d *Dispatcher) describe(err error, remote net.Addr) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "DNS lookup failed: no such host"
		case dnsErr.IsTimeout:
			return "DNS lookup failed: timeout"
		}
		return "DNS lookup failed"
	case remote != nil && !d.cfg.AllowPrivate && !public(remote):
		// An allowlisted internal host: any organization may target it.
		return "a network error (what the host sent is not shown: its address is not public)"
	case errors.As(err, &opErr) && opErr.Err != nil:
		err = fmt.Errorf("%s: %w", opErr.Op, opErr.Err) // without the addresses
	}
	msg := err.Error()
	if len(msg) > maxErrorText {
		msg = strings.ToValidUTF8(msg[:maxErrorText], "") + "..."
	}
	return msg
}

// parseRetryAfter reads a Retry-After header (seconds or an HTTP date),
// clamped to [lo, hi]; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time, lo, hi time.Duration) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		d = time.Duration(min(n, int64(hi/time.Second)+1)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	return min(max(d, lo), hi)
}
