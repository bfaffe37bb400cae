package webhooks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
)

// DispatchStore is what the dispatcher needs from the store.
type DispatchStore interface {
	AcceptEvent(ctx context.Context, a linkflow.EventAccept) (*linkflow.Accepted, error)
	LoadDelivery(ctx context.Context, org, eventID string) (*linkflow.Delivery, *linkflow.StoredEvent, error)
	Org(ctx context.Context, id string) (*linkflow.Org, error)
	SettleDeliveryRetry(ctx context.Context, ref linkflow.DeliveryRef, claim, now, next time.Time) (bool, error)
	ClaimDueDeliveries(ctx context.Context, now time.Time, limit int, visibility time.Duration) ([]linkflow.DeliveryRef, time.Time, error)
	Backlog(ctx context.Context, sample int) (*linkflow.Backlog, error)
	RecordAttempt(ctx context.Context, a linkflow.AttemptRecord) (int, error)
}

// Resolver resolves a host name to addresses. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DefaultSchedule is the default retry schedule: the delay before each
// attempt after the previous one, the first entry being the initial attempt.
// It spans about three days.
var DefaultSchedule = []time.Duration{
	0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Config configures a Dispatcher. Zero fields take the documented defaults.
type Config struct {
	// Store holds delivery state and the retry schedule. Required.
	Store DispatchStore
	// JetStream delivers events (stream LINKFLOW_EVENTS, which
	// workflow.EnsureStreams creates). Required. Its connection also carries
	// the wake-ups a Service sends after a redelivery (SubjectWake).
	JetStream jetstream.JetStream
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Now is the clock that decides when attempts are due and stamps
	// webhook-timestamp. Default time.Now.
	Now func() time.Time
	// Metrics, when set, receives the dispatcher's Prometheus metrics.
	Metrics prometheus.Registerer

	// Schedule is the delay before each attempt, counted from the previous
	// one; the first entry delays the initial attempt, and its length is the
	// number of attempts before a delivery fails. Default DefaultSchedule.
	Schedule []time.Duration
	// Jitter spreads each retry delay by +-Jitter (a fraction). Default 0.2;
	// negative disables it.
	Jitter float64
	// RetryAfterMin and RetryAfterMax clamp a receiver's Retry-After (on
	// 429, 502, 503 and 504), which lengthens the schedule's next delay to
	// it, never shortens it.
	// Defaults 1s and 24h.
	RetryAfterMin time.Duration
	RetryAfterMax time.Duration
	// FailedRetention is how long deliveries that exhausted their schedule
	// stay listed and replayable. Default 14 days.
	FailedRetention time.Duration

	// Concurrency bounds the HTTP attempts in flight in this process.
	// Default 256.
	Concurrency int
	// PerHostConcurrency bounds one organization's attempts in flight to
	// one target host (host:port) in this process. Default 16. Tenants
	// sharing a host (hooks.zapier.com) each have their own share, and
	// their own breaker below.
	PerHostConcurrency int
	// BreakerThreshold is how many consecutive host failures (timeouts,
	// connection errors, 429, 502, 503, 504) of one organization's
	// deliveries open its circuit breaker for that host. Default 5.
	BreakerThreshold int
	// BreakerCooldown is how long an open breaker defers deliveries to its
	// host before one probe is let through. Default 30s. A host's failures
	// and breaker are forgotten after 5 minutes (or the cooldown, if
	// longer) without an attempt to it.
	BreakerCooldown time.Duration
	// BreakerGiveUp is how long an open breaker may hold back a delivery
	// that is due before the delivery fails (its host kept failing): a
	// deferral uses up no attempt, so without it a dead host's deliveries
	// would wait until their state expired. A delivery whose organization's
	// signing secret cannot be opened (or whose organization is gone) fails
	// after as long. Default: the schedule's span
	// (every delay at its longest with Jitter), and at least an hour.
	BreakerGiveUp time.Duration
	// HostQueue is how many deliveries may queue in this process for a busy
	// host's next free slot; they hold no global slot while they wait.
	// Default 1024; negative: none queue (all wait as overflow, below).
	HostQueue int
	// HostQueueWait bounds that wait. A delivery that still has no slot (or
	// found the queue full) goes back to the schedule for HostRetryDelay.
	// Default 5s; it must be well under Visibility.
	HostQueueWait time.Duration
	// HostOverflowWait bounds how long a delivery that finds its host's queue
	// full waits for room in it, holding its global slot meanwhile. That
	// paces this process to a host that drains quickly (a backlog for one
	// busy receiver goes out at the receiver's pace, not round the schedule
	// once a second), and costs other hosts at most this long a wait for a
	// global slot while a slow host's queue overflows. Default 50ms. Keep it
	// well under HostQueueWait: a slot freed by a waiter entering the queue
	// may go to another delivery, so a host's deliveries can stall each
	// other for up to this long.
	HostOverflowWait time.Duration
	// HostRetryDelay is how soon a delivery deferred because its host was
	// saturated is tried again. It is not counted as an attempt. Default 1s.
	HostRetryDelay time.Duration

	// Timeout bounds one attempt, from dialling to reading the response.
	// Default 15s.
	Timeout time.Duration
	// ConnectTimeout bounds resolving and connecting, and the TLS handshake
	// after it (each: up to twice as long in all).
	// Default 5s.
	ConnectTimeout time.Duration
	// AllowPrivate turns the SSRF guard off: targets may be loopback or
	// private addresses, and their responses are kept in the delivery log.
	// For dev only.
	AllowPrivate bool
	// Allowlist lets non-public addresses through the SSRF guard: CIDRs
	// ("10.1.0.0/16") and addresses. Host names ("hooks.internal") and
	// wildcards ("*.corp.example") never skip the address check: when
	// present, they restrict the CIDR exemptions to targets of those names.
	// Responses from non-public addresses are not kept in the delivery log.
	Allowlist []string
	// SecretCacheTTL is how long this process keeps an organization's
	// webhook secrets instead of reading and decrypting them for every
	// attempt: a rotated or new secret signs webhooks within that time.
	// Default 5s; negative reads them for every attempt.
	SecretCacheTTL time.Duration
	// Resolver resolves target host names. Default net.DefaultResolver.
	Resolver Resolver
	// UserAgent of webhook requests. Default "linkflow-webhooks/1".
	UserAgent string

	// Visibility is how long a claimed retry stays hidden from other
	// dispatchers; a dispatcher that dies holding it lets it come back then.
	// Must exceed Timeout. Default 60s.
	Visibility time.Duration
	// PollInterval is the longest the retry poller sleeps, which bounds how
	// late it sees retries other processes schedule; it wakes earlier for
	// the earliest due retry it knows of (its last look's, or one this
	// process scheduled since). Default 1s.
	PollInterval time.Duration
	// ClaimBatch bounds the retries claimed at once. Default 100.
	ClaimBatch int
	// AttemptLogSize is how many attempts each link's log keeps. Default 100.
	AttemptLogSize int
	// ShutdownGrace is how long Stop lets in-flight attempts finish; those
	// still running are then canceled and handed back to the schedule.
	// Default 10s.
	ShutdownGrace time.Duration
	// PullExpiry is how long one pull request for events waits (see
	// outbox.MessagesOptions). Default 30s; at least 1s.
	PullExpiry time.Duration
	// AckWait and MaxAckPending configure the durable JetStream consumer.
	// Defaults 30s and 1000.
	AckWait       time.Duration
	MaxAckPending int
}

func (c *Config) validate() error {
	if c.Store == nil || c.JetStream == nil {
		return errors.New("webhooks: Store and JetStream are required")
	}
	c.Logger = cmp.Or(c.Logger, zap.NewNop())
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	c.Jitter = min(c.Jitter, 0.9)
	c.RetryAfterMin = cmp.Or(c.RetryAfterMin, time.Second)
	c.RetryAfterMax = cmp.Or(c.RetryAfterMax, 24*time.Hour)
	c.FailedRetention = cmp.Or(c.FailedRetention, 14*24*time.Hour)
	c.Concurrency = cmp.Or(c.Concurrency, 256)
	c.PerHostConcurrency = cmp.Or(c.PerHostConcurrency, 16)
	c.BreakerThreshold = cmp.Or(c.BreakerThreshold, 5)
	c.BreakerCooldown = cmp.Or(c.BreakerCooldown, 30*time.Second)
	if c.BreakerGiveUp == 0 {
		var span time.Duration
		for _, d := range c.Schedule {
			span += time.Duration(float64(d) * (1 + c.Jitter))
		}
		c.BreakerGiveUp = max(span, time.Hour)
	}
	c.HostRetryDelay = cmp.Or(c.HostRetryDelay, time.Second)
	c.HostQueue = cmp.Or(c.HostQueue, 1024)
	c.HostQueueWait = cmp.Or(c.HostQueueWait, 5*time.Second)
	c.HostOverflowWait = cmp.Or(c.HostOverflowWait, 50*time.Millisecond)
	c.Timeout = cmp.Or(c.Timeout, 15*time.Second)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, 5*time.Second)
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	c.UserAgent = cmp.Or(c.UserAgent, "linkflow-webhooks/1")
	c.SecretCacheTTL = cmp.Or(c.SecretCacheTTL, 5*time.Second)
	c.Visibility = cmp.Or(c.Visibility, 60*time.Second)
	c.PollInterval = cmp.Or(c.PollInterval, time.Second)
	c.ClaimBatch = cmp.Or(c.ClaimBatch, 100)
	c.AttemptLogSize = cmp.Or(c.AttemptLogSize, 100)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 10*time.Second)
	c.PullExpiry = cmp.Or(c.PullExpiry, jetstream.DefaultExpires)
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, 1000)
	for i, d := range c.Schedule {
		if d < 0 {
			return fmt.Errorf("webhooks: Schedule[%d] is negative", i)
		}
	}
	if c.RetryAfterMin > c.RetryAfterMax {
		return errors.New("webhooks: RetryAfterMin exceeds RetryAfterMax")
	}
	if c.Visibility <= c.Timeout {
		return fmt.Errorf("webhooks: Visibility (%s) must exceed Timeout (%s)", c.Visibility, c.Timeout)
	}
	if c.ConnectTimeout > c.Timeout {
		c.ConnectTimeout = c.Timeout
	}
	if c.Concurrency < 1 || c.PerHostConcurrency < 1 || c.BreakerThreshold < 1 {
		return errors.New("webhooks: Concurrency, PerHostConcurrency and BreakerThreshold must be positive")
	}
	return nil
}
