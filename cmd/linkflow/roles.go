package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/app"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
	"github.com/linkflow/linkflow/workflow"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// apiFlags configure the HTTP API role.
type apiFlags struct {
	httpAddr, publicURL, trustedProxies, operatorKey string
	tokenTTL, redirectDelay                          time.Duration
	// The rate limits.
	key, client, claimGuess, loginFail, userLoginFail, addrLoginFail, authFail, opsFail limitFlag
}

func (f *apiFlags) register(fs *flag.FlagSet, defaultAddr string) {
	fs.StringVar(&f.httpAddr, "http-addr", defaultAddr, "address the HTTP API listens on")
	fs.StringVar(&f.publicURL, "public-url", "", "URL end users reach linkflow at (appClipUrl is built from it; default: http:// and --http-addr, localhost when it listens on every interface)")
	f.key.register(fs, "key-rate", 100, 200, time.Second, "requests per second per API key on the customer API")
	f.client.register(fs, "client-rate", 20, 40, time.Second, "requests per second per client address on the end user's endpoints, the hosted page and the token endpoint")
	f.claimGuess.register(fs, "claim-guess", 10, 10, time.Minute, "claims with a wrong code per minute per client address")
	f.loginFail.register(fs, "login-failure", 5, 10, time.Minute, "failed password-grant logins per minute per user and client address")
	f.userLoginFail.register(fs, "user-login-failure", 100, 100, time.Hour, "failed password-grant logins per hour per user, from every address together")
	f.addrLoginFail.register(fs, "address-login-failure", 30, 30, time.Minute, "failed token-endpoint logins per minute per client address, whatever the user or key")
	f.authFail.register(fs, "auth-failure", 10, 20, time.Minute, "requests with an invalid API key or token (or a wrong operator key) per minute per client address")
	f.opsFail.register(fs, "operator-failure", 100, 100, time.Hour, "wrong operator keys per hour, from every address together (on top of --auth-failure-limit per address)")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed for the client address")
	fs.DurationVar(&f.tokenTTL, "token-ttl", time.Hour, "lifetime of access tokens from POST /v1/auth/token")
	fs.DurationVar(&f.redirectDelay, "hosted-redirect-delay", 2*time.Second, "how long the hosted page shows a success before it redirects to the return URL (a failure waits for the end user's Continue)")
	fs.StringVar(&f.operatorKey, "operator-key", "", "key of the read-only operator page /ops and /ops/status (16 to 256 characters; empty: no page)")
}

// limitFlag is one rate limit: --<name>-limit per unit (0: no limit) and
// --<name>-burst.
type limitFlag struct {
	rate  float64
	burst int
	per   time.Duration
}

func (l *limitFlag) register(fs *flag.FlagSet, name string, rate float64, burst int, per time.Duration, what string) {
	l.per = per
	fs.Float64Var(&l.rate, name+"-limit", rate, what+" (0: no limit)")
	fs.IntVar(&l.burst, name+"-burst", burst, "burst of --"+name+"-limit")
}

// limit is the api.Limit of the flags.
func (l limitFlag) limit() api.Limit {
	if l.rate <= 0 {
		return api.NoLimit
	}
	return api.Limit{Rate: l.rate / l.per.Seconds(), Burst: max(l.burst, 1)}
}

// workerFlags configure the worker role.
type workerFlags struct {
	concurrency      int
	maxAttempts      int
	leaseTTL         time.Duration
	shutdownGrace    time.Duration
	challengeTimeout time.Duration
	integrations     string
	limits           string
	ackWait          time.Duration
	maxResultBytes   int
}

func (f *workerFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.concurrency, "concurrency", 256, "sessions one worker process runs at once")
	fs.IntVar(&f.maxAttempts, "max-attempts", 5, "session attempts per link before it fails")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", 30*time.Second, "lease of a running session, renewed every third of it")
	fs.DurationVar(&f.ackWait, "ack-wait", 30*time.Second, "JetStream ack wait of the workers' consumers")
	fs.IntVar(&f.maxResultBytes, "max-result-bytes", 1<<20, "most bytes a link's operations may return in all; past it the link fails with RESULT_TOO_LARGE")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 20*time.Second, "on SIGTERM, how long in-flight sessions may finish before they are handed back")
	fs.DurationVar(&f.challengeTimeout, "challenge-timeout", 5*time.Minute, "how long a session waits for the answer to an MFA challenge")
	fs.StringVar(&f.integrations, "integrations", "", "comma-separated integrations this worker consumes (default: all)")
	fs.StringVar(&f.limits, "integration-limits", "", "fleet-wide concurrent sessions per integration, e.g. tmobile=10,att=5")
}

// config is the worker's settings (app fills in its dependencies).
func (f *workerFlags) config() (*workflow.Config, error) {
	if err := errors.Join(positive("concurrency", f.concurrency), positive("max-attempts", f.maxAttempts),
		positive("max-result-bytes", f.maxResultBytes),
		atLeast("lease-ttl", f.leaseTTL, time.Second), positive("ack-wait", f.ackWait), positive("shutdown-grace", f.shutdownGrace),
		positive("challenge-timeout", f.challengeTimeout)); err != nil {
		return nil, err
	}
	limits, err := parseLimits(f.limits)
	if err != nil {
		return nil, err
	}
	return &workflow.Config{
		Integrations: splitList(f.integrations), Concurrency: f.concurrency, IntegrationLimits: limits,
		LeaseTTL: f.leaseTTL, MaxAttempts: f.maxAttempts, ChallengeTimeout: f.challengeTimeout,
		ShutdownGrace: f.shutdownGrace, Consumer: outbox.ConsumerConfig{AckWait: f.ackWait}, MaxResultBytes: f.maxResultBytes,
	}, nil
}

func parseLimits(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("integration limit %q: want integration=N", part)
		}
		out[k] = n
	}
	return out, nil
}

// dispatcherFlags configure the webhook dispatcher role.
type dispatcherFlags struct {
	schedule     string
	allowlist    string
	allowPrivate bool
	concurrency  int
	perHost      int
	secretCache  time.Duration
	timeout      time.Duration
	visibility   time.Duration
}

func (f *dispatcherFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.schedule, "webhook-schedule", "", "webhook retry schedule, comma-separated delays, each from the attempt before (default: 0,5s,5m,30m,2h,5h,10h,14h,20h,24h)")
	fs.StringVar(&f.allowlist, "webhook-allowlist", "", "comma-separated CIDRs (or addresses) webhook targets may reach despite the SSRF guard; host names listed too restrict those CIDRs to targets of these names (a name alone lets nothing through); responses from these addresses are not kept")
	fs.BoolVar(&f.allowPrivate, "webhook-allow-private", false, "allow webhook targets on loopback and private networks (dev only)")
	fs.IntVar(&f.concurrency, "webhook-concurrency", 256, "webhook deliveries in flight per dispatcher process")
	fs.IntVar(&f.perHost, "webhook-per-host", 16, "webhook deliveries in flight per organization and target host")
	fs.DurationVar(&f.timeout, "webhook-timeout", 15*time.Second, "one webhook attempt's time limit, connecting included")
	fs.DurationVar(&f.visibility, "webhook-visibility", 60*time.Second, "how long a claimed attempt stays hidden from other dispatchers; a dispatcher that dies mid-attempt hands it back after this (must exceed --webhook-timeout)")
	fs.DurationVar(&f.secretCache, "webhook-secret-cache", 5*time.Second, "how long a dispatcher keeps an organization's webhook secrets: a rotated secret signs within that time (0 or negative: read them for every attempt)")
}

// positive refuses a flag's value that is 0 or less, naming the flag and
// its environment variable: left to the component, 0 would silently be the
// default and a negative value would fail every link or webhook.
func positive[T int | time.Duration](name string, v T) error {
	if v > 0 {
		return nil
	}
	return fmt.Errorf("--%s (%s) must be more than 0, not %v", name, envName(name), v)
}

// atLeast refuses a duration below least: Redis keeps its TTLs in whole
// milliseconds, and a lease or token that lapses as it is made is no
// setting anyone means.
func atLeast(name string, v, least time.Duration) error {
	if v >= least {
		return nil
	}
	return fmt.Errorf("--%s (%s) must be at least %v, not %v", name, envName(name), least, v)
}

// config is the dispatcher's settings (app fills in its dependencies).
func (f *dispatcherFlags) config() (*webhooks.Config, error) {
	if err := errors.Join(positive("webhook-concurrency", f.concurrency), positive("webhook-per-host", f.perHost),
		positive("webhook-timeout", f.timeout), positive("webhook-visibility", f.visibility)); err != nil {
		return nil, err
	}
	secretCache := f.secretCache
	if secretCache == 0 {
		secretCache = -1 // no cache: webhooks.Config reads 0 as its default
	}
	var sched []time.Duration
	for _, s := range splitList(f.schedule) {
		dur, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("webhook schedule: %w", err)
		}
		sched = append(sched, dur)
	}
	return &webhooks.Config{
		Schedule: sched, Concurrency: f.concurrency, PerHostConcurrency: f.perHost, SecretCacheTTL: secretCache,
		Timeout: f.timeout, ConnectTimeout: min(5*time.Second, f.timeout), Visibility: f.visibility,
		AllowPrivate: f.allowPrivate, Allowlist: splitList(f.allowlist),
	}, nil
}

// role says which parts a process runs; nil flags leave a part out.
type role struct {
	api        *apiFlags        // the HTTP API
	worker     *workerFlags     // a worker, the sweeper and the outbox relay
	dispatcher *dispatcherFlags // the webhook dispatcher
	dev        bool
}

// parts are the role's parts with their settings from the flags.
func (r role) parts() (app.Parts, error) {
	var p app.Parts
	var err error
	if r.worker != nil {
		if p.Worker, err = r.worker.config(); err != nil {
			return p, err
		}
	}
	if r.dispatcher != nil {
		if p.Dispatcher, err = r.dispatcher.config(); err != nil {
			return p, err
		}
	}
	if af := r.api; af != nil {
		if err := atLeast("token-ttl", af.tokenTTL, time.Second); err != nil {
			return p, err
		}
		p.API, p.APIAddr = &api.Config{
			PublicURL: cmp.Or(af.publicURL, api.PublicURLOf(af.httpAddr)), Dev: r.dev,
			KeyLimit: af.key.limit(), ClientLimit: af.client.limit(), ClaimGuessLimit: af.claimGuess.limit(),
			LoginFailureLimit: af.loginFail.limit(), UserLoginFailureLimit: af.userLoginFail.limit(),
			AddressLoginFailureLimit: af.addrLoginFail.limit(), AuthFailureLimit: af.authFail.limit(),
			OperatorFailureLimit: af.opsFail.limit(),
			TrustedProxies:       splitList(af.trustedProxies), TokenTTL: af.tokenTTL, RedirectDelay: af.redirectDelay, OperatorKey: af.operatorKey,
		}, af.httpAddr
	}
	return p, nil
}

func runAPI(ctx context.Context, args []string) error {
	var af apiFlags
	return runRole(ctx, "api", args, func(fs *flag.FlagSet) { af.register(fs, ":8080") }, role{api: &af})
}

func runWorker(ctx context.Context, args []string) error {
	var wf workerFlags
	return runRole(ctx, "worker", args, wf.register, role{worker: &wf})
}

// dispatcherGCPercent is a dispatcher process's garbage collection target
// when GOGC is not set. A dispatcher's heap is small and short-lived (each
// delivery's body, request and replies), so at Go's default of 100 it
// collects so often that the collector took about a quarter of its CPU. At
// 400 it spends about 14% less CPU per delivery and peaks at about
// 95 MiB instead of 60 (docs/operations.md). GOGC overrides it; GOMEMLIMIT
// caps the heap either way.
const dispatcherGCPercent = 400

func runDispatcher(ctx context.Context, args []string) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(dispatcherGCPercent)
	}
	var df dispatcherFlags
	return runRole(ctx, "dispatcher", args, df.register, role{dispatcher: &df})
}

// runRole runs a server role: parse its flags (the common ones and its
// own), connect to Redis and NATS, start its services, and stop them on
// SIGTERM.
func runRole(ctx context.Context, name string, args []string, register func(*flag.FlagSet), r role) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c := &common{}
	c.register(fs, name)
	register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(c.logLevel, c.logFormat)
	if err != nil {
		return err
	}
	return runProcess(ctx, c, log, nil, r, nil, nil)
}

// runProcess connects a process, lets prepare use it (may be nil), starts
// the role's services, calls started (may be nil), and stops them on
// SIGTERM.
func runProcess(ctx context.Context, c *common, log *zap.Logger, kr *store.Keyring, r role,
	prepare func(context.Context, *app.Process) error, started func()) error {
	parts, err := r.parts()
	if err != nil {
		return err
	}
	redis.SetLogger(redisLogger{log.Named("redis")})
	cfg, err := c.appConfig(log, kr)
	if err != nil {
		return err
	}
	p, err := app.Connect(ctx, cfg)
	if err != nil {
		return stoppedWhileStarting(ctx, log, err)
	}
	stopped := false
	defer func() {
		// Closing flushes a worker's hand-backs to NATS: part of stopping.
		p.Close()
		if stopped && !r.dev { // dev says it once its servers stopped too
			log.Info("stopped")
		}
	}()
	if prepare != nil {
		if err := prepare(ctx, p); err != nil {
			return stoppedWhileStarting(ctx, log, err)
		}
	}
	g, err := p.Assemble(parts)
	if err != nil {
		return err
	}
	// An operator who stops a process sees that it heard, and when it is
	// done: a worker may wait for its sessions up to --shutdown-grace.
	heard := make(chan struct{})
	stopHearing := context.AfterFunc(ctx, func() {
		log.Info("stopping: what is in flight finishes first (a second signal stops at once)")
		close(heard)
	})
	err = g.Run(ctx, started)
	if !stopHearing() {
		<-heard // the stop's first line is out before its last
	}
	stopped = err == nil // not after a stop while starting, which says so
	return stoppedWhileStarting(ctx, log, err)
}

// stoppedWhileStarting is nil for a start that failed because the process
// was asked to stop (SIGTERM while it waited for Redis or NATS, or while its
// services started): a requested stop is not a failure, and exits 0.
// Whatever it had started is stopped by then.
func stoppedWhileStarting(ctx context.Context, log *zap.Logger, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		log.Info("stopped while starting")
		return nil
	}
	return err
}
