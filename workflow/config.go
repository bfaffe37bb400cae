package workflow

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/outbox"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Config configures a Worker. Zero fields take the documented defaults.
type Config struct {
	// Store, Registry, JetStream, NATS and Publisher are required.
	Store     RunStore
	Registry  *operations.Registry
	JetStream jetstream.JetStream
	NATS      *nats.Conn
	Publisher Publisher
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Clock is the clock of the link's own times: its deadline, a
	// challenge's timeout, the pauses between retries, the shutdown grace.
	// Leases and ack deadlines run on Redis's and JetStream's clocks, so
	// the heartbeat that renews them runs on the real one. Default the real
	// clock.
	Clock clockwork.Clock
	// Metrics, when set, records the worker's counters.
	Metrics *Metrics

	// Integrations to consume. Default: every integration of the registry.
	Integrations []string
	// Concurrency is how many sessions one process runs at once. Provider
	// calls are I/O, so this can be high. Default 256.
	Concurrency int
	// Commits is how many sessions of one process build and commit their
	// outcome at once; the others wait with only what the provider
	// returned. Redis commits a batch of them per round trip, so a few
	// dozen keep it busy; a session that built its commit and waits for
	// Redis holds its result, event and connection, several KiB, which at
	// thousands of sessions waiting on a saturated Redis is most of the
	// process's memory. Default 128.
	Commits int
	// IntegrationLimits caps concurrent sessions per integration across the
	// whole fleet (enforced in Redis); integrations not listed are unlimited.
	IntegrationLimits map[string]int
	// LeaseTTL is how long a session's lease lasts unless renewed. Default 30s.
	LeaseTTL time.Duration
	// Heartbeat is how often leases are renewed and in-progress acks sent.
	// Default LeaseTTL/3.
	Heartbeat time.Duration
	// MaxAttempts bounds session attempts of one link (transient failures,
	// crashes). Default 5.
	MaxAttempts int
	// RetryBase and RetryMax shape the exponential backoff between attempts
	// after a transient failure. Defaults 1s and 1m.
	RetryBase time.Duration
	RetryMax  time.Duration
	// ChallengeTimeout is how long a session waits for the end user's answer
	// to a challenge. Default 5 minutes.
	ChallengeTimeout time.Duration
	// ChallengeTries is how many answers a challenge accepts. Default 3.
	ChallengeTries int
	// PasswordTries is how many passwords the end user may try for a link,
	// the claim's included, counted across its session attempts: a password
	// the provider refuses (INVALID_CREDENTIALS) is asked for again until
	// then, and only then fails the link. Default 3.
	PasswordTries int
	// MaxResultBytes bounds what a link's operations may return in all
	// (their data as the providers answered it): past it the link fails
	// with RESULT_TOO_LARGE and its later operations do not run. A result
	// is kept in Redis with its link and read whole by the API. Default
	// 1 MiB.
	MaxResultBytes int
	// ShutdownGrace is how long Stop lets in-flight sessions finish before
	// handing them back for immediate redelivery. Default 20s.
	ShutdownGrace time.Duration
	// Consumer configures the durable consumers.
	Consumer outbox.ConsumerConfig
}

// ErrUnknownIntegration is a worker configured for an integration the
// registry does not have: its consumer would wait for links that never come.
var ErrUnknownIntegration = errors.New("workflow: no such integration")

func (c *Config) validate() error {
	if c.Store == nil || c.Registry == nil || c.JetStream == nil || c.NATS == nil || c.Publisher == nil {
		return errors.New("workflow: Store, Registry, JetStream, NATS and Publisher are required")
	}
	c.Logger = cmp.Or(c.Logger, zap.NewNop())
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if len(c.Integrations) == 0 {
		c.Integrations = c.Registry.IDs()
	}
	for _, id := range slices.Concat(c.Integrations, slices.Collect(maps.Keys(c.IntegrationLimits))) {
		if _, ok := c.Registry.Integration(id); !ok {
			return fmt.Errorf("%w: %q (in Integrations or IntegrationLimits); the integrations are %s",
				ErrUnknownIntegration, id, strings.Join(c.Registry.IDs(), ", "))
		}
	}
	c.Concurrency = cmp.Or(c.Concurrency, 256)
	c.Commits = cmp.Or(c.Commits, 128)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, 30*time.Second)
	c.Heartbeat = cmp.Or(c.Heartbeat, c.LeaseTTL/3)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 5)
	c.RetryBase = cmp.Or(c.RetryBase, time.Second)
	c.RetryMax = cmp.Or(c.RetryMax, time.Minute)
	c.ChallengeTimeout = cmp.Or(c.ChallengeTimeout, 5*time.Minute)
	c.ChallengeTries = cmp.Or(c.ChallengeTries, 3)
	c.PasswordTries = cmp.Or(c.PasswordTries, 3)
	c.MaxResultBytes = cmp.Or(c.MaxResultBytes, 1<<20)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 20*time.Second)
	c.Consumer = c.Consumer.WithDefaults()
	if c.Heartbeat >= c.LeaseTTL {
		return fmt.Errorf("workflow: Heartbeat (%s) must be shorter than LeaseTTL (%s)", c.Heartbeat, c.LeaseTTL)
	}
	// A running session's message is kept by in-progress acks sent with
	// the heartbeat: two must fit in the ack wait, or JetStream redelivers
	// it during every long session, each time a delivery towards MaxDeliver.
	if c.Heartbeat > c.Consumer.AckWait/2 {
		return fmt.Errorf("workflow: the heartbeat (%s, a third of the lease TTL) must be at most half the ack wait (%s): "+
			"raise the ack wait or shorten the lease TTL", c.Heartbeat, c.Consumer.AckWait)
	}
	// Each attempt takes at least one delivery: with as many attempts as
	// deliveries, the message would be dead-lettered before the last one.
	if c.MaxAttempts >= c.Consumer.MaxDeliver {
		return fmt.Errorf("workflow: MaxAttempts (%d) must be below the consumer's MaxDeliver (%d)", c.MaxAttempts, c.Consumer.MaxDeliver)
	}
	return nil
}
