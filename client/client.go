package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures a Client. Zero fields take the defaults documented on
// each.
type Config struct {
	// BaseURL is where linkflow's API is served, such as
	// "https://linkflow.example.com" (a path prefix is kept). Required.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>" to the customer
	// API: an API key (lfk_...) or an access token (lft_...) from
	// IssueToken. Default none: then only the end user's endpoints
	// (ClaimLink, GetSession, SubmitInput, DeclineLink) and IssueToken work. It is never
	// sent to those.
	APIKey string
	// HTTPClient sends the requests. Default: an http.Client over
	// http.DefaultTransport with a 30-second timeout per try.
	HTTPClient *http.Client
	// MaxAttempts bounds the tries of one call, the first included (see the
	// package documentation for which calls are tried again). Default 3; 1
	// turns retries off.
	MaxAttempts int
	// MaxRetryWait caps one wait between tries. A Retry-After longer than
	// this is not waited for: the call returns the error. Default 30s.
	MaxRetryWait time.Duration
	// UserAgent is the User-Agent header. Default "linkflow-go".
	UserAgent string
}

// DefaultMaxAttempts, DefaultMaxRetryWait and DefaultUserAgent are the
// defaults of the Config fields of the same names.
const (
	DefaultMaxAttempts  = 3
	DefaultMaxRetryWait = 30 * time.Second
	DefaultUserAgent    = "linkflow-go"
)

func (cfg *Config) validate() error {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("client: BaseURL %q is not an absolute http(s) URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("client: BaseURL %q has a query or fragment", cfg.BaseURL)
	}
	if cfg.MaxAttempts < 1 {
		return errors.New("client: MaxAttempts must be at least 1")
	}
	if cfg.MaxRetryWait < 0 {
		return errors.New("client: MaxRetryWait must not be negative")
	}
	return nil
}

// Client calls linkflow's API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string // BaseURL without its trailing slash
	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a client with cfg's defaults filled in, or an error when cfg
// is not valid.
func New(cfg Config) (*Client, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects}
	}
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.MaxRetryWait = cmp.Or(cfg.MaxRetryWait, DefaultMaxRetryWait)
	cfg.UserAgent = cmp.Or(cfg.UserAgent, DefaultUserAgent)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), sleep: sleepCtx}, nil
}

// noRedirects keeps a redirect as the answer: linkflow's API never
// redirects, so one comes from a BaseURL that names the wrong place (http
// for https, a missing path), and following it would turn a POST into a GET
// without its body.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// WithAPIKey returns a copy of c that sends key instead, such as an access
// token from IssueToken.
func (c *Client) WithAPIKey(key string) *Client {
	cp := *c
	cp.cfg.APIKey = key
	return &cp
}
