package outbox

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow/internal/redact"
)

// ConnectConfig configures Connect. Zero fields take the documented
// defaults.
type ConnectConfig struct {
	// URL names the NATS servers, comma-separated: nats:// (a bare
	// host:port is one), tls://, ws:// or wss://. Required.
	URL string
	// Name is the connection's name in the servers' monitoring. Default
	// "linkflow".
	Name string
	// CredsFile is a NATS credentials file (a user JWT and its NKey seed).
	// Optional.
	CredsFile string
	// CAFile holds the certificates that verify the servers' (PEM);
	// default the system's. CertFile and KeyFile are the client's own
	// certificate and key for mutual TLS, both or neither.
	CAFile, CertFile, KeyFile string
	// Streams configure the streams Connect ensures once connected.
	Streams StreamConfig
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Waiting, when not nil, is told each time a try fails, with what
	// Connect waits for ("nats": a server to connect to, "streams":
	// JetStream to take the streams) and why, and with a nil why once it is
	// done with it; a readiness probe can say it while Connect waits.
	Waiting func(check string, why error)
	// AttemptTimeout bounds a try at ensuring the streams. Default 10s.
	// The first try gets 2s, and each next twice as long up to it: on a
	// fresh cluster, a stream several processes create at once can leave
	// some of their requests unanswered although it was created (seen with
	// nats-server 2.15, nats-server #3677), and the next try finds it.
	AttemptTimeout time.Duration
	// MaxBackoff caps the pause between tries, which doubles from 100ms.
	// Default 5s.
	MaxBackoff time.Duration
	// LogEvery is how often at most Connect logs what it waits for. Default
	// 5s.
	LogEvery time.Duration
}

func (c ConnectConfig) withDefaults() ConnectConfig {
	c.Name = cmp.Or(c.Name, "linkflow")
	c.Logger = cmp.Or(c.Logger, zap.NewNop())
	c.AttemptTimeout = cmp.Or(c.AttemptTimeout, 10*time.Second)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, 5*time.Second)
	c.LogEvery = cmp.Or(c.LogEvery, 5*time.Second)
	return c
}

// ConfigError is a configuration Connect cannot work with and no wait
// heals: a malformed URL, an unreadable credentials or TLS file, credentials
// the servers refuse, a certificate that does not verify. Field names the
// ConnectConfig field to fix.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Connect connects to NATS and ensures linkflow's streams, waiting for as
// long as ctx lets it: for a server to accept the connection (it keeps
// reconnecting afterwards, forever), then for JetStream to take the streams
// (no meta leader yet, a stream another process is creating, a timeout on
// a cluster still forming), retrying with capped exponential backoff and
// logging what it waits for. A ConfigError fails it at once; otherwise it
// fails only when ctx ends.
func Connect(ctx context.Context, cfg ConnectConfig) (_ *nats.Conn, _ jetstream.JetStream, err error) {
	cfg = cfg.withDefaults()
	log := cfg.Logger.Named("nats")
	opts, err := cfg.options()
	if err != nil {
		return nil, nil, err
	}
	w := &waiter{log: log, every: cfg.LogEvery, waiting: cfg.Waiting}
	var connectedOnce sync.Once
	connected, closed := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var lastErr error
	opts = append(opts,
		nats.ConnectHandler(func(*nats.Conn) { connectedOnce.Do(func() { close(connected) }) }),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			connectedOnce.Do(func() { close(connected) })
			log.Info("nats reconnected", zap.String("server", nc.ConnectedUrlRedacted()))
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			mu.Lock()
			lastErr = err
			mu.Unlock()
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats error", zap.Error(err))
		}),
	)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		// Retrying on a failed connection, nats.Connect fails only on
		// what it was given.
		if cerr := cfg.classify(err); errors.As(cerr, new(*ConfigError)) {
			return nil, nil, cerr
		}
		return nil, nil, &ConfigError{Field: "URL", Err: err}
	}
	defer func() {
		if err != nil {
			nc.Close()
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !nc.IsConnected() {
		why := nc.LastError()
		if why == nil {
			mu.Lock()
			why = lastErr
			mu.Unlock()
		}
		if why == nil {
			why = nats.ErrNoServers
		}
		if cerr := cfg.classify(why); errors.As(cerr, new(*ConfigError)) {
			return nil, nil, cerr
		}
		select {
		case <-connected:
		case <-closed:
			return nil, nil, cfg.classify(cmp.Or(nc.LastError(), why))
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("gave up waiting for NATS: %v (%w)", why, ctx.Err())
		case <-tick.C:
			w.wait("nats", "waiting for NATS", why)
		}
	}
	log.Info("nats connected", zap.String("server", nc.ConnectedUrlRedacted()))
	w.done("nats")
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	if err := ensureStreams(ctx, js, cfg, w); err != nil {
		return nil, nil, err
	}
	w.done("streams")
	return nc, js, nil
}

// ensureStreams runs EnsureStreams until it succeeds, a definitive error
// comes, or ctx ends.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg ConnectConfig, w *waiter) error {
	backoff := 100 * time.Millisecond
	timeout := min(2*time.Second, cfg.AttemptTimeout)
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := EnsureStreams(actx, js, cfg.Streams)
		cancel()
		timeout = min(2*timeout, cfg.AttemptTimeout)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("gave up waiting for JetStream: %v (%w)", cmp.Or(last, err), ctx.Err())
		}
		last = err
		if derr := definitiveStreamError(err); derr != nil {
			return derr
		}
		w.wait("streams", "waiting for JetStream", err)
		// Full jitter: processes started together do not retry together.
		pause := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, cfg.MaxBackoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for JetStream: %v (%w)", err, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// definitiveStreamError returns what no wait heals among EnsureStreams'
// errors: a configuration the servers refuse. Everything else (timeouts,
// no responders, JetStream not enabled yet or temporarily unavailable, no
// meta leader, not enough peers yet, a stream being created by another
// process) is worth waiting for.
func definitiveStreamError(err error) error {
	if ce := (*ConfigError)(nil); errors.As(err, &ce) {
		return ce
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return nil
	}
	switch api.ErrorCode {
	case 10074: // replicas > 1 not supported in non-clustered mode
		return &ConfigError{Field: "Streams.Replicas", Err: err}
	case 10052: // invalid stream configuration
		return err
	case 10065: // subjects overlap with an existing stream
		return &ConfigError{Field: "Streams", Err: fmt.Errorf("%w: another stream of this NATS account already takes "+
			"these subjects (a stream capturing $JS.EVENT.ADVISORY.> for auditing takes LINKFLOW_ADVISORIES'); "+
			"narrow or remove that stream, or give linkflow an account of its own", err)}
	}
	return nil
}

// options are the nats.Connect options of cfg, once its URL and files are
// checked.
func (c ConnectConfig) options() ([]nats.Option, error) {
	if err := checkURLs(c.URL); err != nil {
		return nil, &ConfigError{Field: "URL", Err: err}
	}
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.Timeout(5 * time.Second),
	}
	if c.CredsFile != "" {
		if err := checkCreds(c.CredsFile); err != nil {
			return nil, &ConfigError{Field: "CredsFile", Err: err}
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err == nil && !x509.NewCertPool().AppendCertsFromPEM(b) {
			err = fmt.Errorf("%s holds no PEM certificate", c.CAFile)
		}
		if err != nil {
			return nil, &ConfigError{Field: "CAFile", Err: err}
		}
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, &ConfigError{Field: "CertFile", Err: errors.New("a client certificate needs both its certificate and its key file")}
		}
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			return nil, &ConfigError{Field: "CertFile", Err: err}
		}
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts, nil
}

// checkURLs checks what nats.Connect would only find out at its first
// connection, or not at all.
func checkURLs(list string) error {
	if strings.TrimSpace(list) == "" {
		return errors.New("no NATS server URL")
	}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		raw := redact.URLs(s) // errors name the server, never its password
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("%q is not a URL: %w", raw, redact.ParseError(err))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("%q: scheme %q, want nats, tls, ws or wss", raw, u.Scheme)
		}
		if u.Hostname() == "" {
			return fmt.Errorf("%q names no host", raw)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%q: port %q is not a port", raw, p)
			}
		}
	}
	return nil
}

// checkCreds checks that a credentials file holds a user JWT and an NKey
// seed.
func checkCreds(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if _, err := nkeys.ParseDecoratedJWT(b); err != nil {
		return fmt.Errorf("%s: no user JWT: %w", file, err)
	}
	if _, err := nkeys.ParseDecoratedNKey(b); err != nil {
		return fmt.Errorf("%s: no NKey seed: %w", file, err)
	}
	return nil
}

// classify turns a connection error no wait heals into a ConfigError.
func (c ConnectConfig) classify(err error) error {
	authField := "URL"
	if c.CredsFile != "" {
		authField = "CredsFile"
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired),
		errors.Is(err, nats.ErrNkeysNotSupported):
		return &ConfigError{Field: authField, Err: err}
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return &ConfigError{Field: "CAFile", Err: err}
	case errors.Is(err, nats.ErrSecureConnWanted), errors.Is(err, nats.ErrClientCertOrRootCAsRequired):
		return &ConfigError{Field: "URL", Err: err}
	case strings.Contains(err.Error(), "remote error: tls:"):
		// The server refused the client's certificate (or its absence).
		return &ConfigError{Field: "CertFile", Err: err}
	}
	return err
}

// waiter logs what Connect waits for, at most every so often, and tells
// cfg.Waiting every time.
type waiter struct {
	log     *zap.Logger
	every   time.Duration
	waiting func(string, error)
	last    time.Time
	since   time.Time
}

func (w *waiter) done(check string) {
	if w.waiting != nil {
		w.waiting(check, nil)
	}
}

func (w *waiter) wait(check, msg string, why error) {
	if w.waiting != nil {
		w.waiting(check, why)
	}
	now := time.Now()
	if w.since.IsZero() {
		w.since = now
	}
	if now.Sub(w.last) < w.every {
		return
	}
	w.last = now
	w.log.Warn(msg, zap.String("why", why.Error()), zap.Duration("waited", now.Sub(w.since).Round(time.Millisecond)))
}
