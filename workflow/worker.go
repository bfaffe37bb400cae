package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/startstop"
	"github.com/linkflow/linkflow/outbox"
)

// Publisher puts messages on JetStream (outbox.Publisher is one).
type Publisher interface {
	Publish(ctx context.Context, msgs ...linkflow.Message) error
}

// RunStore is what a worker needs from the store.
type RunStore interface {
	BeginRun(ctx context.Context, org, id, token string, leaseTTL time.Duration) (*linkflow.Run, error)
	Heartbeat(ctx context.Context, leases []linkflow.LeaseRef, slots []linkflow.SlotRef, ttl time.Duration) ([]linkflow.LeaseState, error)
	SetChallenge(ctx context.Context, org, id, token string, c *linkflow.Challenge, password string) error
	AskPassword(ctx context.Context, org, id, token string, c *linkflow.Challenge, refused int) error
	ReleaseRun(ctx context.Context, org, id, token, lastError string, refundAttempt bool) error
	FinishRun(ctx context.Context, l *linkflow.Link, token string, conn *linkflow.ConnectionWrite) (*linkflow.Finished, error)
	FailLink(ctx context.Context, org, id string, le linkflow.LinkError) (*linkflow.Finished, error)
	TakeInput(ctx context.Context, id, token, closing string) (challengeID, response string, err error)
	AppendTrace(ctx context.Context, id string, expiresAt time.Time, entries ...linkflow.TraceEntry) error
	AcquireSlot(ctx context.Context, integration, holder string, limit int, ttl time.Duration) (bool, error)
	ReleaseSlot(ctx context.Context, integration, holder string) error
}

// Worker runs claimed links. Any number of worker processes share the
// durable consumers; starting another process is how linkflow scales out.
type Worker struct {
	cfg Config
	log *zap.Logger

	slots   chan struct{}
	commits chan struct{} // Config.Commits

	born time.Time // NewWorker's time, with its monotonic reading
	// renewing is held by the heartbeat's renewal and, shared, by each
	// release of a fleet slot, which so comes after a renewal in flight.
	renewing sync.RWMutex

	mu       sync.Mutex
	sessions map[string]*session // by link id
	// earlyCancels remembers cancel notices for links whose session is not
	// tracked yet (the notice raced BeginRun), so newSession still sees them.
	earlyCancels map[string]time.Time

	stopping  atomic.Bool
	fetchStop context.CancelFunc
	hardStop  context.CancelCauseFunc
	runCtx    context.Context
	fetchWG   sync.WaitGroup
	sessWG    sync.WaitGroup
	bgWG      sync.WaitGroup
	subs      []*nats.Subscription
	pulls     []*outbox.Pull
	started   atomic.Bool
	stopOnce  sync.Once
	bgStop    chan struct{}
}

// errShutdown is the cause of a session's context being canceled because the
// process is stopping and the grace period is over.
var errShutdown = errors.New("worker shutting down")

// NewWorker returns a worker; Start runs it.
func NewWorker(cfg Config) (*Worker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Worker{
		cfg:      cfg,
		log:      cfg.Logger.Named("worker"),
		slots:    make(chan struct{}, cfg.Concurrency),
		commits:  make(chan struct{}, cfg.Commits),
		sessions: map[string]*session{},
		bgStop:   make(chan struct{}),

		earlyCancels: map[string]time.Time{},
		born:         time.Now(),
	}, nil
}

// sinceStart is the time since NewWorker on the monotonic clock, for the
// pacing of in-progress acks: a wall clock stepped back must not hold them
// back (JetStream would redeliver running sessions).
func (w *Worker) sinceStart() int64 { return int64(time.Since(w.born)) }

// Start creates the consumers and begins fetching. It returns once fetching
// has started; Stop ends it. When a step fails, what started before it
// (subscriptions, fetch loops) is stopped before Start returns the error.
func (w *Worker) Start(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return startstop.ErrStarted
	}
	if err := w.start(ctx); err != nil {
		w.Stop()
		return err
	}
	return nil
}

func (w *Worker) start(ctx context.Context) error {
	runCtx, hardStop := context.WithCancelCause(context.WithoutCancel(ctx))
	w.runCtx, w.hardStop = runCtx, hardStop
	fetchCtx, fetchStop := context.WithCancel(runCtx)
	w.fetchStop = fetchStop

	for _, subj := range []string{outbox.SubjectCancel, outbox.SubjectInput} {
		sub, err := w.cfg.NATS.Subscribe(subj, w.onControl)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		w.subs = append(w.subs, sub)
	}
	advisories, err := outbox.StartPull(ctx, outbox.PullConfig{
		JetStream: w.cfg.JetStream, Stream: outbox.StreamAdvisories, Consumer: outbox.AdvisoryConsumer,
		Ensure: func(ctx context.Context) (jetstream.Consumer, error) {
			return outbox.EnsureAdvisoryConsumer(ctx, w.cfg.JetStream)
		},
		Batch: 10, Expiry: w.cfg.Consumer.PullExpiry, Backoff: w.backoff, Clock: w.cfg.Clock, Logger: w.log,
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", outbox.StreamAdvisories, err)
	}
	w.pulls = append(w.pulls, advisories)
	w.fetchWG.Add(1)
	go w.takeAdvisories(fetchCtx, advisories)

	for _, integ := range w.cfg.Integrations {
		pull, err := outbox.StartPull(ctx, outbox.PullConfig{
			JetStream: w.cfg.JetStream, Stream: outbox.StreamLinks, Consumer: outbox.WorkerConsumer(integ),
			Ensure: func(ctx context.Context) (jetstream.Consumer, error) {
				return outbox.EnsureWorkerConsumer(ctx, w.cfg.JetStream, integ, w.cfg.Consumer)
			},
			Batch: w.batch(integ), Expiry: w.cfg.Consumer.PullExpiry,
			Backoff: w.backoff, Clock: w.cfg.Clock, Logger: w.log.With(zap.String("integration", integ)),
		})
		if err != nil {
			return fmt.Errorf("consume %s: %w", integ, err)
		}
		w.pulls = append(w.pulls, pull)
		w.fetchWG.Add(1)
		go w.fetch(fetchCtx, integ, pull)
	}
	w.bgWG.Add(1)
	go w.heartbeat()
	w.log.Info("worker started", zap.Strings("integrations", w.cfg.Integrations),
		zap.Int("concurrency", w.cfg.Concurrency))
	return nil
}

// fetch takes messages of one integration and runs each in a free slot.
// It waits for a message before it takes a slot: an integration with
// nothing to run holds none of the process's concurrency (a worker serves
// every integration, and with one slot an idle one would hold it forever).
// A message waiting here for a slot is not renewed: past the ack wait,
// JetStream hands it to a worker with room, and the lease settles which
// one runs it.
func (w *Worker) fetch(ctx context.Context, integ string, pull *outbox.Pull) {
	defer w.fetchWG.Done()
	limit := w.cfg.IntegrationLimits[integ]
	for {
		msg, err := pull.Next(ctx)
		if err != nil {
			return // Stop drained it
		}
		if w.stopping.Load() {
			// Buffered before Stop: hand it back for immediate redelivery.
			_ = msg.Nak()
			continue
		}
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			_ = msg.Nak()
			return
		}
		if w.stopping.Load() {
			_ = msg.Nak()
			<-w.slots
			continue
		}
		holder := ""
		if limit > 0 {
			holder = linkflow.NewLeaseToken()
			if !w.waitFleetSlot(ctx, integ, holder, limit, msg) {
				_ = msg.Nak() // the process slot is given back already
				continue
			}
		}
		w.sessWG.Add(1)
		go func() {
			defer w.sessWG.Done()
			defer func() { <-w.slots }()
			if holder != "" {
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					// After a renewal in flight: it may hold the slot again
					// (a lost hold of a session it saw running).
					w.renewing.RLock()
					defer w.renewing.RUnlock()
					if err := w.cfg.Store.ReleaseSlot(ctx, integ, holder); err != nil {
						// Held until its TTL: the integration runs a session short meanwhile.
						w.log.Warn("release integration slot", zap.String("integration", integ), zap.Error(err))
					}
				}()
			}
			w.handle(msg, integ, holder)
		}()
	}
}

// waitFleetSlot waits for one of the integration's fleet-wide slots, keeping
// the message's ack deadline alive meanwhile. Its caller holds a process
// slot; between tries it is given back: a session whose end user answered
// a challenge takes its process slot back while it holds its fleet slot,
// and with the two waiting for each other neither would go on. It reports
// true with the process slot held again, false on shutdown without it.
func (w *Worker) waitFleetSlot(ctx context.Context, integ, holder string, limit int, msg jetstream.Msg) bool {
	wait := 20 * time.Millisecond
	lastProgress := time.Now()
	for {
		ok, err := w.cfg.Store.AcquireSlot(ctx, integ, holder, limit, w.cfg.LeaseTTL)
		if err == nil && ok {
			return true
		}
		if err != nil && ctx.Err() == nil {
			w.log.Warn("acquire integration slot", zap.String("integration", integ), zap.Error(err))
		}
		if time.Since(lastProgress) > w.cfg.Consumer.AckWait/3 {
			_ = msg.InProgress()
			lastProgress = time.Now()
		}
		<-w.slots
		if !w.pause(ctx, wait) {
			return false
		}
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// handle begins a session attempt for one claimed message.
func (w *Worker) handle(msg jetstream.Msg, integ, holder string) {
	m, err := outbox.ParseClaimed(msg.Data())
	if err != nil {
		w.termDeadLettered(msg, "unparseable message", "")
		return
	}
	log := w.log.WithLazy(zap.String("link_id", m.LinkID), zap.String("org_id", m.OrgID)) // encoded only if the session logs
	ctx := w.runCtx
	token := linkflow.NewLeaseToken()
	run, err := w.cfg.Store.BeginRun(ctx, m.OrgID, m.LinkID, token, w.cfg.LeaseTTL)
	if err != nil {
		log.Warn("begin run", zap.Error(err))
		_ = msg.NakWithDelay(w.redeliveryBackoff(msg))
		return
	}
	switch run.Verdict {
	case linkflow.RunDone:
		_ = msg.Ack()
		return
	case linkflow.RunBusy:
		_ = msg.NakWithDelay(max(run.BusyFor, 100*time.Millisecond))
		return
	case linkflow.RunGone, linkflow.RunNotClaimed:
		log.Warn("claimed message for a link that cannot run", zap.String("verdict", string(run.Verdict)))
		if run.Verdict == linkflow.RunGone {
			w.termDeadLettered(msg, "link "+string(run.Verdict), m.LinkID)
			return
		}
		// A link never claimed: not kept for its copy, since a message that
		// ran out of deliveries would have the advisory fail the link, which
		// waits for its end user.
		_ = w.deadLetter(msg, "link "+string(run.Verdict), m.LinkID)
		_ = msg.Term()
		return
	}
	s := newSession(w, msg, run, integ, holder, log)
	s.run()
}

// onControl wakes the session a control message names.
func (w *Worker) onControl(m *nats.Msg) {
	var c outbox.Control
	if json.Unmarshal(m.Data, &c) != nil {
		return
	}
	w.mu.Lock()
	s := w.sessions[c.LinkID]
	if s == nil && m.Subject == outbox.SubjectCancel {
		now := w.cfg.Clock.Now()
		for id, at := range w.earlyCancels {
			if now.Sub(at) > time.Minute {
				delete(w.earlyCancels, id)
			}
		}
		w.earlyCancels[c.LinkID] = now
	}
	w.mu.Unlock()
	if s == nil {
		return
	}
	switch m.Subject {
	case outbox.SubjectCancel:
		s.requestCancel()
	case outbox.SubjectInput:
		s.inputReady()
	}
}

func (w *Worker) track(s *session) {
	w.mu.Lock()
	w.sessions[s.link.ID] = s
	_, early := w.earlyCancels[s.link.ID]
	delete(w.earlyCancels, s.link.ID)
	w.mu.Unlock()
	if early {
		s.requestCancel()
	}
	w.cfg.Metrics.inFlight(1)
}

func (w *Worker) untrack(s *session) {
	w.mu.Lock()
	if w.sessions[s.link.ID] == s {
		delete(w.sessions, s.link.ID)
	}
	w.mu.Unlock()
	w.cfg.Metrics.inFlight(-1)
}

// InFlight returns how many sessions this process runs now.
func (w *Worker) InFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sessions)
}

// Stop stops fetching, lets in-flight sessions finish for up to the grace
// period, then hands the rest back to JetStream for immediate redelivery.
// It is safe to call twice.
func (w *Worker) Stop() {
	if !w.started.Load() {
		return // before Start: nothing runs yet
	}
	w.stopOnce.Do(func() {
		w.stopping.Store(true)
		w.log.Info("worker stopping", zap.Int("in_flight", w.InFlight()))
		for _, p := range w.pulls {
			p.Drain()
		}
		w.fetchStop()
		w.fetchWG.Wait()

		done := make(chan struct{})
		go func() { w.sessWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-w.cfg.Clock.After(w.cfg.ShutdownGrace):
			w.log.Info("grace period over: handing sessions back", zap.Int("in_flight", w.InFlight()))
			w.hardStop(errShutdown)
			<-done
		}
		for _, sub := range w.subs {
			_ = sub.Unsubscribe()
		}
		close(w.bgStop)
		w.bgWG.Wait()
		w.hardStop(errShutdown)
		w.log.Info("worker stopped")
	})
}

// batch is how many messages of integ the worker asks JetStream for at once.
func (w *Worker) batch(integ string) int {
	batch := w.cfg.Concurrency
	if lim := w.cfg.IntegrationLimits[integ]; lim > 0 {
		batch = min(batch, lim)
	}
	return max(1, batch)
}

// pause waits d on the clock; false when ctx ended first.
func (w *Worker) pause(ctx context.Context, d time.Duration) bool {
	t := w.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

// backoff is the delay before attempt n+1 after a transient failure of
// attempt n: exponential from RetryBase, capped at RetryMax, with jitter.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.RetryBase << min(attempt-1, 20)
	if d <= 0 || d > w.cfg.RetryMax {
		d = w.cfg.RetryMax
	}
	return min(jitter(d, 0.2), w.cfg.RetryMax)
}
