package monitor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

// Store is what the monitor reads from Redis (store.Store is one).
type Store interface {
	Backlog(ctx context.Context, sample int) (*linkflow.Backlog, error)
	EventRecords(ctx context.Context, ids []string) (map[string]linkflow.StoredEvent, error)
	// EvictionWarnings warn of the Redis servers that would evict keys
	// when full.
	EvictionWarnings(ctx context.Context) ([]string, error)
}

// Config configures a Monitor. Zero fields take the documented defaults.
type Config struct {
	// Store is required, and JetStream unless JetStreamErr is set.
	Store     Store
	JetStream jetstream.JetStream
	// JetStreamErr, with no JetStream, is why NATS could not be reached
	// (linkflow status during a NATS outage): the parts read from JetStream
	// are reported unread with it, the rest are shown.
	JetStreamErr error
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// CacheFor is how long a computed Backlog or Status is reused. Default
	// 5s.
	CacheFor time.Duration
	// Timeout bounds one computation. Default 5s.
	Timeout time.Duration
	// Windows are the periods links finished are counted over, the first
	// also the one recent failures are read from. Default 1h and 24h.
	Windows []time.Duration
	// FailureSample bounds the link.failed events read for their codes.
	// Default 500.
	FailureSample int
	// HostSample is how many entries of each shard's part of the retry
	// schedule are read for failing hosts. Default 16 (1,024 in all).
	HostSample int
	// MaxHosts bounds the failing hosts listed. Default 20.
	MaxHosts int
}

func (c Config) withDefaults() Config {
	c.Logger = cmp.Or(c.Logger, zap.NewNop())
	if c.Now == nil {
		c.Now = time.Now
	}
	c.CacheFor = cmp.Or(c.CacheFor, 5*time.Second)
	c.Timeout = cmp.Or(c.Timeout, 5*time.Second)
	if len(c.Windows) == 0 {
		c.Windows = []time.Duration{time.Hour, 24 * time.Hour}
	}
	c.FailureSample = cmp.Or(c.FailureSample, 500)
	c.HostSample = cmp.Or(c.HostSample, 16)
	c.MaxHosts = cmp.Or(c.MaxHosts, 20)
	return c
}

func (c Config) validate() error {
	if c.Store == nil || (c.JetStream == nil && c.JetStreamErr == nil) {
		return errors.New("monitor: Store and JetStream (or JetStreamErr) are required")
	}
	for _, w := range c.Windows {
		if w <= 0 {
			return errors.New("monitor: Windows must be positive")
		}
	}
	return nil
}

// Monitor computes the operator's view. It starts nothing; it is safe for
// concurrent use.
type Monitor struct {
	cfg     Config
	log     *zap.Logger
	backlog cache[*Backlog]
	status  cache[*Status]
}

// New returns a Monitor with cfg's defaults filled in.
func New(cfg Config) (*Monitor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Monitor{cfg: cfg, log: cfg.Logger.Named("monitor")}, nil
}

// Backlog returns the work waiting now, at most CacheFor old.
func (m *Monitor) Backlog(ctx context.Context) (*Backlog, error) {
	return m.backlog.get(ctx, m.cfg, m.computeBacklog)
}

// Status returns the backlog and what happened lately, at most CacheFor
// old. The value is shared: do not change it.
func (m *Monitor) Status(ctx context.Context) (*Status, error) {
	return m.status.get(ctx, m.cfg, m.computeStatus)
}

// cache keeps one computed value for a while; callers that come while it
// is computed wait for it (one computation at a time).
type cache[T any] struct {
	mu  sync.Mutex
	at  time.Time
	val T
	// last is the latest value computed, readable while the next one is
	// (latest).
	last atomic.Pointer[computed[T]]
}

type computed[T any] struct {
	at  time.Time
	val T
}

// latest returns the latest value computed and when, without waiting for
// a computation under way; false before the first.
func (c *cache[T]) latest() (T, time.Time, bool) {
	l := c.last.Load()
	if l == nil {
		var zero T
		return zero, time.Time{}, false
	}
	return l.val, l.at, true
}

func (c *cache[T]) get(ctx context.Context, cfg Config, compute func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && cfg.Now().Sub(c.at) < cfg.CacheFor {
		return c.val, nil
	}
	// The computation outlives a caller that gives up: whoever waits
	// behind it gets its result.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeout)
	defer cancel()
	v, err := compute(cctx)
	if err != nil {
		var zero T
		return zero, err
	}
	c.at, c.val = cfg.Now(), v
	c.last.Store(&computed[T]{at: c.at, val: v})
	return v, nil
}

// Backlog is the work waiting. A part whose source could not be read is
// nil, and Errors says why.
type Backlog struct {
	At time.Time `json:"at"`
	// Consumers are the workers' consumers (one per integration, and
	// deadletter: max-deliveries advisories) and the dispatchers'.
	Consumers []Consumer `json:"consumers"`
	// Links are the links not finished, by where they wait.
	Links *Links `json:"links"`
	// Outbox is what waits in Redis to be published to JetStream.
	Outbox *Outbox `json:"outbox"`
	// Retries is the webhook retry schedule.
	Retries *Retries `json:"retries"`
	// DeadLetters are messages the workers gave up on (linkflow dlq list).
	DeadLetters *DeadLetters `json:"deadLetters"`
	// Errors name the parts that could not be read, and why.
	Errors []string `json:"errors,omitempty"`
}

// Consumer is one JetStream consumer's backlog.
type Consumer struct {
	Name   string `json:"name"`
	Stream string `json:"stream"`
	// Pending messages were not delivered yet: claimed links waiting for a
	// worker, events waiting for a dispatcher.
	Pending uint64 `json:"pending"`
	// AckPending messages were delivered and not acknowledged yet: sessions
	// running or waiting for an MFA answer, events being accepted.
	AckPending int `json:"ackPending"`
	// Redelivered of those were delivered more than once.
	Redelivered int `json:"redelivered"`
	// Waiting are pull requests waiting: workers or dispatchers idle.
	Waiting int `json:"waiting"`
	// Missing is set for an integration with claimed links whose consumer
	// does not exist: no worker serves it (Pending is its messages).
	Missing bool `json:"missing,omitempty"`
}

// Links are the links not finished, by where they wait.
type Links struct {
	// Pending links were created and not claimed yet.
	Pending int64 `json:"pending"`
	// Queued links were claimed and wait for a worker (the workers'
	// consumers' pending messages).
	Queued uint64 `json:"queued"`
	// InFlight links were delivered to a worker and not acknowledged: being
	// run, waiting for an MFA answer, or waiting to be tried again after a
	// transient failure (the workers' consumers' ack-pending messages).
	InFlight int `json:"inFlight"`
	// Kept are all the links Redis keeps, whatever their status (until
	// their retention ends).
	Kept int64 `json:"kept"`
}

// Outbox is what waits in Redis to be published to JetStream.
type Outbox struct {
	Entries int64 `json:"entries"`
	// OldestSeconds is how long ago the oldest entry was recorded, or last
	// taken by the relay to be published again (it pushes an entry back
	// each time): past a few seconds, JetStream does not take messages.
	OldestSeconds float64 `json:"oldestSeconds"`
}

// Retries is the webhook retry schedule.
type Retries struct {
	Scheduled int64 `json:"scheduled"`
	// NextDue is when the earliest entry is due (nil when none);
	// OverdueSeconds how long past it is (0 when not yet): a schedule
	// whose entries stay overdue has no dispatcher taking them.
	NextDue        *time.Time `json:"nextDue,omitempty"`
	OverdueSeconds float64    `json:"overdueSeconds"`
}

// DeadLetters counts the dead-letter stream.
type DeadLetters struct {
	Count  uint64     `json:"count"`
	Newest *time.Time `json:"newest,omitempty"`
}

// computeBacklog reads JetStream and Redis at once.
func (m *Monitor) computeBacklog(ctx context.Context) (*Backlog, error) {
	b := &Backlog{At: m.cfg.Now().UTC()}
	var wg sync.WaitGroup
	var consErr, dlqErr, redisErr error
	var rb *linkflow.Backlog
	wg.Go(func() { b.Consumers, consErr = m.consumers(ctx) })
	wg.Go(func() { b.DeadLetters, dlqErr = m.deadLetters(ctx) })
	wg.Go(func() { rb, redisErr = m.cfg.Store.Backlog(ctx, 0) })
	wg.Wait()
	b.addError("consumers", consErr)
	b.addError("dead letters", dlqErr)
	b.addError("redis", redisErr)
	if rb != nil {
		b.Outbox = &Outbox{Entries: rb.OutboxEntries}
		if !rb.OutboxOldest.IsZero() {
			b.Outbox.OldestSeconds = max(0, b.At.Sub(rb.OutboxOldest).Seconds())
		}
		b.Retries = &Retries{Scheduled: rb.RetryScheduled}
		if !rb.RetryNextDue.IsZero() {
			due := rb.RetryNextDue.UTC()
			b.Retries.NextDue = &due
			b.Retries.OverdueSeconds = max(0, b.At.Sub(due).Seconds())
		}
	}
	if rb != nil && consErr == nil {
		b.Links = &Links{Pending: rb.PendingLinks, Kept: rb.KeptLinks}
		for _, c := range b.Consumers {
			if c.Stream == outbox.StreamLinks {
				b.Links.Queued += c.Pending
				b.Links.InFlight += c.AckPending
			}
		}
	}
	if consErr != nil && dlqErr != nil && redisErr != nil {
		return nil, errors.New(strings.Join(b.Errors, "; "))
	}
	return b, nil
}

func (b *Backlog) addError(part string, err error) {
	if err != nil {
		b.Errors = append(b.Errors, part+": "+err.Error())
	}
}

// jetStream is the JetStream to read, or why there is none.
func (m *Monitor) jetStream() (jetstream.JetStream, error) {
	if m.cfg.JetStream == nil {
		return nil, m.cfg.JetStreamErr
	}
	return m.cfg.JetStream, nil
}

// consumers reads the workers' consumers (of claimed links, and of
// max-deliveries advisories) and the dispatchers'.
func (m *Monitor) consumers(ctx context.Context) ([]Consumer, error) {
	js, err := m.jetStream()
	if err != nil {
		return nil, err
	}
	links, err := js.Stream(ctx, outbox.StreamLinks)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", outbox.StreamLinks, err)
	}
	out := []Consumer{} // nil only when they cannot be read
	lister := links.ListConsumers(ctx)
	for info := range lister.Info() { // drained to the end: the lister stops only then
		if strings.HasPrefix(info.Name, outbox.WorkerConsumer("")) {
			out = append(out, consumerOf(info))
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("consumers of %s: %w", outbox.StreamLinks, err)
	}
	// Claimed links of an integration no worker serves (its consumer is
	// made by the first worker that does) wait where no consumer counts
	// them.
	info, err := links.Info(ctx, jetstream.WithSubjectFilter(outbox.SubjectClaimed+">"))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", outbox.StreamLinks, err)
	}
	served := map[string]bool{}
	for _, c := range out {
		served[c.Name] = true
	}
	for subject, n := range info.State.Subjects {
		name := outbox.WorkerConsumer(strings.TrimPrefix(subject, outbox.SubjectClaimed))
		if !served[name] && n > 0 {
			out = append(out, Consumer{Name: name, Stream: outbox.StreamLinks, Pending: n, Missing: true})
		}
	}
	slices.SortFunc(out, func(a, b Consumer) int { return strings.Compare(a.Name, b.Name) })
	// The dispatchers' consumer, and the workers' one of max-deliveries
	// advisories (advisories waiting there are links not yet failed).
	for _, c := range [][2]string{{outbox.StreamEvents, outbox.DispatcherConsumer}, {outbox.StreamAdvisories, outbox.AdvisoryConsumer}} {
		cons, err := js.Consumer(ctx, c[0], c[1])
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			// No dispatcher (or worker) has started yet.
		case err != nil:
			return nil, fmt.Errorf("consumer %s: %w", c[1], err)
		default:
			out = append(out, consumerOf(cons.CachedInfo()))
		}
	}
	return out, nil
}

func consumerOf(info *jetstream.ConsumerInfo) Consumer {
	return Consumer{Name: info.Name, Stream: info.Stream, Pending: info.NumPending, AckPending: info.NumAckPending,
		Redelivered: info.NumRedelivered, Waiting: info.NumWaiting}
}

func (m *Monitor) deadLetters(ctx context.Context) (*DeadLetters, error) {
	js, err := m.jetStream()
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, outbox.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", outbox.StreamDLQ, err)
	}
	st := s.CachedInfo().State
	d := &DeadLetters{Count: st.Msgs}
	if st.Msgs == 0 {
		return d, nil
	}
	// The stream's LastTime stays that of its last message after a replay
	// deleted it: the newest letter's own time is read instead (the server
	// skips deleted messages). Without it the count is still shown.
	msg, err := s.GetLastMsgForSubject(ctx, outbox.SubjectsDLQ)
	if err != nil {
		if !errors.Is(err, jetstream.ErrMsgNotFound) { // not a replay meanwhile
			m.log.Warn("read the newest dead letter", zap.Error(err))
		}
		return d, nil
	}
	t := msg.Time.UTC()
	d.Newest = &t
	return d, nil
}
