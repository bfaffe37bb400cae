package remote

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/redact"
	"github.com/linkflow/linkflow/operations"
)

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	// BaseURL is where the provider serves the protocol, such as
	// "https://provider.example.com/linkflow". Required.
	BaseURL string
	// Integration is the provider's id of the integration this client
	// speaks for; it replaces the Integration of every request. Default:
	// each request's own.
	Integration string
	// Secret, when set, is sent as "Authorization: Bearer <Secret>".
	Secret string
	// HTTPClient makes the calls. Default: a client of its own, keeping up to
	// 64 idle connections to the provider.
	HTTPClient *http.Client
	// Timeout bounds each call; a call that runs out reports a timeout.
	// Default 30s.
	Timeout time.Duration
	// Logger gets why the provider could not be reached: the error a call
	// returns names only the path, since it reaches the customer (the
	// link's error) and the provider's address may be an internal one.
	// Default: none.
	Logger *zap.Logger
}

func (c *Config) validate() error {
	if c.BaseURL == "" {
		return errors.New("remote: Config.BaseURL is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("remote: Config.BaseURL %q is not an http(s) URL", redact.URLs(c.BaseURL))
	}
	if c.Timeout < 0 {
		return errors.New("remote: Config.Timeout must not be negative")
	}
	return nil
}

func (c *Config) setDefaults() {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	c.Timeout = cmp.Or(c.Timeout, 30*time.Second)
	if c.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		// A redirect is an answer, not a place to send a password to.
		c.HTTPClient = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Client calls a remote provider. It implements operations.Provider,
// operations.Refresher and operations.Revoker; network failures and 5xx
// answers are transient errors, and a call that runs out of time is a
// timeout. It is safe for concurrent use.
type Client struct {
	cfg Config
	// sessions remembers each session's integration when the client serves
	// more than one, because Close is given only the session id.
	sessions sync.Map
}

var (
	_ operations.Provider  = (*Client)(nil)
	_ operations.Refresher = (*Client)(nil)
	_ operations.Revoker   = (*Client)(nil)
)

// NewClient returns a Client with cfg's defaults filled in.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Client{cfg: cfg}, nil
}

func (c *Client) integration(req string) string { return cmp.Or(c.cfg.Integration, req) }

// Catalog fetches what the provider offers.
func (c *Client) Catalog(ctx context.Context) (*Catalog, error) {
	var cat Catalog
	if err := c.call(ctx, http.MethodGet, PathCatalog, nil, &cat); err != nil {
		return nil, err
	}
	return &cat, nil
}

// Login starts a session at the provider.
func (c *Client) Login(ctx context.Context, req operations.LoginRequest) (*operations.LoginResult, error) {
	req.Integration = c.integration(req.Integration)
	var res operations.LoginResult
	if err := c.call(ctx, http.MethodPost, PathLogin, req, &res); err != nil {
		return nil, err
	}
	if err := checkLogin(PathLogin, &res); err != nil {
		return nil, err
	}
	if c.cfg.Integration == "" && res.SessionID != "" {
		c.sessions.Store(res.SessionID, req.Integration)
	}
	return &res, nil
}

// ContinueLogin answers a challenge.
func (c *Client) ContinueLogin(ctx context.Context, req operations.ContinueRequest) (*operations.LoginResult, error) {
	req.Integration = c.integration(req.Integration)
	var res operations.LoginResult
	if err := c.call(ctx, http.MethodPost, PathContinueLogin, req, &res); err != nil {
		return nil, err
	}
	res.SessionID = cmp.Or(res.SessionID, req.SessionID)
	if err := checkLogin(PathContinueLogin, &res); err != nil {
		return nil, err
	}
	if c.cfg.Integration == "" && res.SessionID != req.SessionID {
		// A provider that starts a new session once the challenge is
		// answered: Close is given the new id.
		c.sessions.Delete(req.SessionID)
		c.sessions.Store(res.SessionID, req.Integration)
	}
	return &res, nil
}

// checkLogin refuses a login answer linkflow cannot go on with: logged in
// without a session, or with credentials that hold no access token (an
// answer in another shape, {"access_token": ...}, decodes to that), which
// would be kept on the connection as if they were good. Like an answer that
// is not JSON, it is the provider's fault and may be passing.
func checkLogin(path string, res *operations.LoginResult) error {
	switch {
	case res.Challenge != nil:
		return nil
	case res.SessionID == "":
		return operations.Unavailable(fmt.Sprintf("remote provider answered %s without a sessionId or a challenge", path))
	case res.Credentials != nil && res.Credentials.AccessToken == "":
		return operations.Unavailable(fmt.Sprintf("remote provider answered %s with credentials without an accessToken", path))
	}
	return nil
}

// Execute runs one operation.
func (c *Client) Execute(ctx context.Context, req operations.ExecuteRequest) (json.RawMessage, error) {
	req.Integration = c.integration(req.Integration)
	var res ExecuteResponse
	if err := c.call(ctx, http.MethodPost, PathExecute, req, &res); err != nil {
		return nil, err
	}
	if res.Result == nil {
		// {"error": ...} with a 200, or the result not under "result": not
		// an outcome to report as a success.
		return nil, operations.Unavailable("remote provider answered " + PathExecute + " without a result")
	}
	return res.Result, nil
}

// Close ends a session.
func (c *Client) Close(ctx context.Context, sessionID string) error {
	integration := c.cfg.Integration
	if integration == "" {
		v, _ := c.sessions.LoadAndDelete(sessionID)
		integration, _ = v.(string)
	}
	return c.call(ctx, http.MethodPost, PathClose, CloseRequest{Integration: integration, SessionID: sessionID}, nil)
}

// Refresh exchanges credentials for new ones. It needs Config.Integration.
func (c *Client) Refresh(ctx context.Context, creds operations.Credentials) (*operations.Credentials, error) {
	var res CredentialsResponse
	if err := c.call(ctx, http.MethodPost, PathRefresh, CredentialsRequest{Integration: c.cfg.Integration, Credentials: creds}, &res); err != nil {
		return nil, err
	}
	return &res.Credentials, nil
}

// Revoke ends credentials. It needs Config.Integration.
func (c *Client) Revoke(ctx context.Context, creds operations.Credentials) error {
	return c.call(ctx, http.MethodPost, PathRevoke, CredentialsRequest{Integration: c.cfg.Integration, Credentials: creds}, nil)
}

// Shutdown closes the client's idle connections. Registry.Close calls it.
func (c *Client) Shutdown(context.Context) { c.cfg.HTTPClient.CloseIdleConnections() }

// maxAnswer bounds an answer's size: a provider's result is a few kilobytes.
const maxAnswer = 16 << 20

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("remote %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, body)
	if err != nil {
		return fmt.Errorf("remote %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderProtocol, strconv.Itoa(ProtocolVersion))
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Secret)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return c.transportError(ctx, path, err)
	}
	defer resp.Body.Close()
	operations.ReportRequestID(ctx, resp.Header.Get("X-Request-Id"))
	if v := resp.Header.Get(HeaderProtocol); v != "" && v != strconv.Itoa(ProtocolVersion) {
		// The provider was upgraded since linkflow read its catalog: its
		// answers may not mean what linkflow reads, and it may have done
		// what it was asked (a write, a rotation), so the call is not tried
		// again.
		return operations.Rejected(fmt.Sprintf("%s: remote provider answered %s in protocol version %s; linkflow speaks %d",
			CodeNotSupported, path, v, ProtocolVersion))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return c.transportError(ctx, path, err)
	}
	if len(data) > maxAnswer && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// Cut short, it would read as invalid JSON, a transient failure:
		// the whole session would run again for the same answer.
		return operations.NewError(linkflow.FailureResultTooLarge,
			fmt.Sprintf("remote provider answered %s with more than %d bytes", path, maxAnswer))
	}
	return decodeAnswer(path, resp.StatusCode, resp.Header, data[:min(len(data), maxAnswer)], out)
}

// decodeAnswer reads a provider's answer to path into out: an error typed
// from a failed answer, the decoded body of a good one.
func decodeAnswer(path string, status int, h http.Header, data []byte, out any) error {
	if status < 200 || status > 299 {
		return answerError(status, h, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return operations.Unavailable(fmt.Sprintf("remote provider answered %s with invalid JSON", path))
	}
	return nil
}

// maxMessage bounds the message of a provider's error kept in linkflow (it
// goes into a failed link's error and its webhook).
const maxMessage = 500

func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	s = s[:maxMessage]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// transportError types a failure to get an answer: a deadline is a timeout,
// a caller's cancellation is returned as it is, anything else (a refused
// connection, a reset) is a transient unavailability.
func (c *Client) transportError(ctx context.Context, path string, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return operations.Timeout(fmt.Sprintf("remote provider did not answer %s in time", path))
	case ctx.Err() != nil:
		return fmt.Errorf("remote %s: %w", path, ctx.Err())
	}
	c.cfg.Logger.Warn("remote provider unreachable", zap.String("path", path), zap.Error(err))
	return operations.Unavailable("remote provider unreachable (" + path + ")")
}

// answerError types a failed answer from its body when it has the
// protocol's error body, else from its status.
func answerError(status int, h http.Header, body []byte) error {
	retry := retryAfter(h)
	var env ErrorResponse
	if json.Unmarshal(body, &env) == nil && env.Error.Code != "" {
		e := env.Error
		e.Code, e.Message = clip(e.Code), clip(e.Message)
		if e.RetryAfterMs > 0 {
			retry = time.Duration(min(e.RetryAfterMs, maxRetryAfter.Milliseconds())) * time.Millisecond
		}
		var pe *operations.Error
		switch {
		case knownCodes[linkflow.FailureCode(e.Code)]:
			pe = operations.NewError(linkflow.FailureCode(e.Code), e.Message)
		case e.Code == CodeUnauthorized:
			// linkflow's own configuration (the shared secret), which a
			// deployment mends: worth trying again, whatever the body says.
			pe = operations.Unavailable(e.Code + ": " + e.Message)
		case e.Code == CodeNotSupported:
			pe = operations.Rejected(e.Code + ": " + e.Message)
		case e.Transient:
			pe = operations.Unavailable(e.Code + ": " + e.Message)
		default:
			pe = operations.Rejected(e.Code + ": " + e.Message)
		}
		pe.RetryAfter = retry
		return pe
	}
	msg := fmt.Sprintf("remote provider answered %d %s", status, http.StatusText(status))
	switch {
	case status == http.StatusTooManyRequests:
		return operations.RateLimited(msg, retry)
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		return operations.Timeout(msg)
	case status >= 500:
		e := operations.Unavailable(msg)
		e.RetryAfter = retry
		return e
	}
	return operations.Rejected(msg)
}

// maxRetryAfter bounds a provider's Retry-After, so no figure overflows a
// duration; the worker's own backoff and the link's deadline bound it
// further.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(min(int64(s), int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
