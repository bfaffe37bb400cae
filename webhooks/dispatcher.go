package webhooks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

// Dispatcher delivers completion events to customers' webhook URLs. It
// consumes LINKFLOW_EVENTS, keeps each event's delivery state and retries in
// Redis (never only in memory), and sends signed requests with bounded
// concurrency per target host. Any number of dispatcher processes can run.
type Dispatcher struct {
	cfg     Config
	log     *zap.Logger
	store   DispatchStore
	client  *http.Client
	signer  *signer
	secrets *secretCache
	gate    *hostGate
	metrics *metrics

	slots    chan struct{} // global in-flight attempts
	slotFree chan struct{}
	wake     chan struct{}
	// wanted is the earliest time (unix ms) announced to the poller since
	// it last woke (wakeAt), or the look it planned then; MaxInt64 for none.
	wanted atomic.Int64

	started    atomic.Bool
	stopping   atomic.Bool
	stopCh     chan struct{}
	stopOnce   sync.Once
	attemptCtx context.Context
	cancel     context.CancelFunc
	loops      sync.WaitGroup
	attempts   sync.WaitGroup
	pull       *outbox.Pull
	sub        *nats.Subscription
	lastGauge  time.Time
}

// NewDispatcher returns a dispatcher with cfg's defaults filled in; Start
// runs it.
func NewDispatcher(cfg Config) (*Dispatcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g, err := newGuard(&cfg)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:      cfg,
		log:      cfg.Logger.Named("webhooks"),
		store:    cfg.Store,
		client:   newHTTPClient(&cfg, g),
		signer:   newSigner(),
		secrets:  newSecretCache(cfg.SecretCacheTTL, cfg.Now, cfg.Store.Org),
		metrics:  newMetrics(cfg.Metrics),
		slots:    make(chan struct{}, cfg.Concurrency),
		slotFree: make(chan struct{}, 1),
		wake:     make(chan struct{}, 1),
		stopCh:   make(chan struct{}),
	}
	d.gate = newHostGate(&cfg, func(key string, reopened bool) {
		d.metrics.breakerOpened()
		org, host := splitGateKey(key)
		if reopened {
			d.log.Debug("circuit breaker probe failed", zap.String("org_id", org), zap.String("host", host))
		} else {
			d.log.Warn("circuit breaker opened", zap.String("org_id", org), zap.String("host", host),
				zap.Duration("cooldown", cfg.BreakerCooldown))
		}
	})
	d.wanted.Store(math.MaxInt64)
	d.attemptCtx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Start creates the durable consumer and begins consuming events and
// polling the retry schedule. It returns once both run; Stop ends them. A
// dispatcher starts once, and not after Stop.
func (d *Dispatcher) Start(ctx context.Context) error {
	if d.stopping.Load() {
		return errors.New("webhooks: dispatcher stopped")
	}
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("webhooks: dispatcher already started")
	}
	pull, err := outbox.StartPull(ctx, outbox.PullConfig{
		JetStream: d.cfg.JetStream, Stream: outbox.StreamEvents, Consumer: outbox.DispatcherConsumer,
		Ensure: func(ctx context.Context) (jetstream.Consumer, error) {
			return outbox.EnsureDispatcherConsumer(ctx, d.cfg.JetStream,
				outbox.DispatcherConsumerConfig{AckWait: d.cfg.AckWait, MaxAckPending: d.cfg.MaxAckPending})
		},
		Batch: min(d.cfg.Concurrency, 256), Expiry: d.cfg.PullExpiry, Logger: d.log,
	})
	if err != nil {
		return fmt.Errorf("webhooks: consume: %w", err)
	}
	d.pull = pull
	if nc := d.cfg.JetStream.Conn(); nc != nil {
		if d.sub, err = nc.Subscribe(outbox.SubjectWake, func(*nats.Msg) { d.kick() }); err != nil {
			pull.Drain()
			return fmt.Errorf("webhooks: subscribe %s: %w", outbox.SubjectWake, err)
		}
	}
	d.loops.Add(2)
	go d.consume()
	go d.poll()
	d.log.Info("dispatcher started", zap.Int("concurrency", d.cfg.Concurrency),
		zap.Int("per_host", d.cfg.PerHostConcurrency), zap.Int("attempts", len(d.cfg.Schedule)),
		zap.Bool("allow_private", d.cfg.AllowPrivate))
	return nil
}

// Stop stops consuming and polling, lets in-flight attempts finish for
// ShutdownGrace, then cancels the rest and hands them back to the retry
// schedule (a delivery this process could not hand back returns after the
// visibility timeout). It is safe to call twice.
func (d *Dispatcher) Stop() {
	d.stopOnce.Do(func() {
		d.stopping.Store(true)
		close(d.stopCh)
		if d.sub != nil {
			_ = d.sub.Unsubscribe()
		}
		if d.pull != nil {
			d.pull.Drain()
		}
		d.loops.Wait()
		done := make(chan struct{})
		go func() { d.attempts.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(d.cfg.ShutdownGrace):
			d.cancel()
			<-done
		}
		d.cancel()
		d.client.CloseIdleConnections()
		d.log.Info("dispatcher stopped")
	})
}

// job is one delivery to attempt, which this process claimed in the retry
// schedule until claim; del and ev are loaded when missing.
type job struct {
	ref   linkflow.DeliveryRef
	claim time.Time
	del   *linkflow.Delivery
	ev    *linkflow.StoredEvent
}

// takeSlot waits for a global attempt slot; false when stopping.
func (d *Dispatcher) takeSlot() bool {
	select {
	case d.slots <- struct{}{}:
		return true
	case <-d.stopCh:
		return false
	}
}

func (d *Dispatcher) freeSlot() {
	<-d.slots
	select {
	case d.slotFree <- struct{}{}:
	default:
	}
}

// launch runs a job in the background on a slot the caller took.
func (d *Dispatcher) launch(j job) {
	d.attempts.Add(1)
	go func() {
		defer d.attempts.Done()
		if d.process(j) {
			d.freeSlot()
		}
	}()
}

// consume takes events from JetStream. For each it creates the delivery
// state (unless a redelivered message finds it), claims the first attempt in
// the retry schedule and only then acks, so the event is never only in
// memory; the attempt itself runs in the background.
func (d *Dispatcher) consume() {
	defer d.loops.Done()
	for {
		msg, err := d.pull.Next(d.attemptCtx)
		if err != nil {
			return // Stop drained it
		}
		if d.stopping.Load() {
			_ = msg.Nak() // buffered before Stop: another dispatcher takes it now
			continue
		}
		if !d.takeSlot() {
			_ = msg.Nak()
			continue
		}
		// Accepting costs a Redis round trip: it runs on the slot's own
		// goroutine, so messages are accepted concurrently, not one by one.
		d.attempts.Add(1)
		go func() {
			defer d.attempts.Done()
			holds := true
			if j, ok := d.accept(msg); ok {
				holds = d.process(j)
			}
			if holds {
				d.freeSlot()
			}
		}()
	}
}

// accept handles one event message; it reports a job when this process owns
// the event's first attempt now. Reading the event, creating the delivery
// state and claiming the attempt are one round trip (store.AcceptEvent).
func (d *Dispatcher) accept(msg jetstream.Msg) (job, bool) {
	m, err := outbox.ParseEvent(msg.Data())
	if err != nil {
		d.log.Error("unparseable event message", zap.String("subject", msg.Subject()))
		_ = msg.Term()
		return job{}, false
	}
	log := d.log.WithLazy(zap.String("org_id", m.OrgID), zap.String("event_id", m.EventID))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := d.cfg.Now()
	claim := now.Add(d.cfg.Visibility)
	acc, err := d.store.AcceptEvent(ctx, linkflow.EventAccept{OrgID: m.OrgID, EventID: m.EventID,
		Now: now, FirstAt: now.Add(d.cfg.Schedule[0]), ClaimUntil: claim})
	if errors.Is(err, linkflow.ErrNotFound) {
		log.Error("event message for an event that is not recorded")
		_ = msg.Term()
		return job{}, false
	}
	if err != nil {
		d.nakLater(msg, log, "accept event", err)
		return job{}, false
	}
	// From here the schedule holds the delivery (or it is finished): the
	// message can go. Someone else holding it already (a redelivered
	// message) owns it.
	_ = msg.Ack()
	if !acc.Owned {
		if del := acc.Delivery; !del.Terminal() && del.NextAt.After(now) {
			d.wakeAt(del.NextAt)
		}
		return job{}, false
	}
	return job{ref: linkflow.DeliveryRef{OrgID: m.OrgID, EventID: m.EventID}, claim: claim, del: acc.Delivery, ev: acc.Event}, true
}

func (d *Dispatcher) nakLater(msg jetstream.Msg, log *zap.Logger, what string, err error) {
	delay := time.Second
	if md, mdErr := msg.Metadata(); mdErr == nil {
		delay = min(time.Duration(md.NumDelivered)*time.Second, 30*time.Second)
	}
	log.Warn(what+"; the event comes back", zap.Error(err), zap.Duration("in", delay))
	_ = msg.NakWithDelay(delay)
}

// kick has the poller look now (a redelivery is due).
func (d *Dispatcher) kick() { d.wakeAt(d.cfg.Now()) }

// wakeAt has the poller look at t when something this process (or a
// redelivery) put in the schedule is due then. The poller looks at t, not at
// once: a look costs a round trip over every shard of the schedule.
func (d *Dispatcher) wakeAt(t time.Time) {
	if d.want(t.UnixMilli()) {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// want lowers wanted to at; it reports whether it did.
func (d *Dispatcher) want(at int64) bool {
	for {
		w := d.wanted.Load()
		if at >= w {
			return false
		}
		if d.wanted.CompareAndSwap(w, at) {
			return true
		}
	}
}

// poll claims due retries, as many as there are free slots, and attempts
// them. It looks when the earliest entry it knows of is due: the earliest
// its last look saw, or one announced by wakeAt since, and every
// PollInterval at most (for what other processes schedule).
func (d *Dispatcher) poll() {
	defer d.loops.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var due time.Time // when to look next; zero: at once
	for {
		select {
		case <-d.stopCh:
			return
		case <-timer.C:
		case <-d.wake:
		}
		now := d.cfg.Now()
		// What was announced until now is due by then or is in the schedule
		// for this look to see; what is announced from now on waits in
		// wanted for the next one.
		if w := d.wanted.Swap(math.MaxInt64); w < due.UnixMilli() {
			due = time.UnixMilli(w)
		}
		if due.After(now) {
			// Woken for something due later: look then. (Kept in wanted
			// too, so that only an earlier time wakes the poller again.)
			d.want(due.UnixMilli())
			timer.Reset(due.Sub(now))
			continue
		}
		wait := d.pollOnce()
		due = d.cfg.Now().Add(wait) // wait counts from the look's end
		timer.Reset(wait)
	}
}

// pollOnce claims and launches one batch; it returns how long to sleep.
func (d *Dispatcher) pollOnce() time.Duration {
	free := cap(d.slots) - len(d.slots)
	if free <= 0 {
		select {
		case <-d.slotFree:
		case <-d.stopCh:
		case <-time.After(d.cfg.PollInterval):
		}
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := d.cfg.Now()
	limit := min(free, d.cfg.ClaimBatch)
	refs, next, err := d.store.ClaimDueDeliveries(ctx, now, limit, d.cfg.Visibility)
	if err != nil {
		d.log.Warn("claim due deliveries", zap.Error(err))
		return d.cfg.PollInterval
	}
	claim := now.Add(d.cfg.Visibility)
	for i, ref := range refs {
		if !d.takeSlot() {
			// Stopping: hand the rest back at once.
			for _, r := range refs[i:] {
				_, _ = d.store.SettleDeliveryRetry(ctx, r, claim, now, now)
			}
			return d.cfg.PollInterval
		}
		d.launch(job{ref: ref, claim: claim})
	}
	if time.Since(d.lastGauge) > 5*time.Second && d.metrics != nil {
		d.lastGauge = time.Now()
		if b, err := d.store.Backlog(ctx, 0); err == nil {
			d.metrics.scheduleSize(b.RetryScheduled)
		}
	}
	if len(refs) == limit {
		return 0
	}
	wait := d.cfg.PollInterval
	if !next.IsZero() {
		wait = min(wait, next.Sub(d.cfg.Now()))
	}
	return max(wait, time.Millisecond)
}
