package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/startstop"
)

// Store is what the outbox needs from the store: the entries due for
// publishing again, and forgetting those JetStream confirmed.
type Store interface {
	// DueOutbox returns up to limit messages recorded at least age ago and
	// not confirmed, and pushes them back by age, so that concurrent relays
	// do not all publish the same ones. Its error may come with messages:
	// then it says why the others must wait.
	DueOutbox(ctx context.Context, age time.Duration, limit int) ([]linkflow.Message, error)
	// AckOutbox forgets messages JetStream confirmed.
	AckOutbox(ctx context.Context, msgs ...linkflow.Message) error
}

// PublisherConfig configures a Publisher. Zero fields take the documented
// defaults.
type PublisherConfig struct {
	// JetStream and Store are required.
	JetStream jetstream.JetStream
	Store     Store
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// AckDelay is how long confirmations gather before the outbox entries
	// are forgotten in one round trip. Default 2ms.
	AckDelay time.Duration
	// AckBatch bounds the confirmations forgotten in one round trip.
	// Default 500.
	AckBatch int
}

// Publisher puts messages on JetStream and forgets their outbox entries once
// JetStream has them. A message whose publish fails stays in the outbox, and
// the Relay publishes it again with the same message id.
type Publisher struct {
	cfg PublisherConfig
	log *zap.Logger

	mu      sync.Mutex
	pending []linkflow.Message
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    startstop.Once
}

// NewPublisher returns a publisher; Start begins forgetting confirmed entries.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.JetStream == nil || cfg.Store == nil {
		return nil, errors.New("outbox: JetStream and Store are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	cfg.AckDelay = cmp.Or(cfg.AckDelay, 2*time.Millisecond)
	cfg.AckBatch = cmp.Or(cfg.AckBatch, 500)
	return &Publisher{cfg: cfg, log: cfg.Logger.Named("publisher"), kick: make(chan struct{}, 1)}, nil
}

// Start runs the loop that forgets confirmed outbox entries.
func (p *Publisher) Start(ctx context.Context) error {
	return p.once.Start(func() (func(), error) {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.loop()
		return func() { close(p.stop); <-p.done }, nil
	})
}

// Stop forgets the last confirmed entries and stops. It is safe to call
// twice, and before Start.
func (p *Publisher) Stop() { p.once.Stop() }

func (p *Publisher) loop() {
	defer close(p.done)
	for {
		select {
		case <-p.kick:
		case <-p.stop:
			p.flush()
			return
		}
		// Let a batch gather: one round trip for many confirmations.
		select {
		case <-time.After(p.cfg.AckDelay):
		case <-p.stop:
		}
		p.flush()
	}
}

func (p *Publisher) flush() {
	for {
		p.mu.Lock()
		n := min(len(p.pending), p.cfg.AckBatch)
		batch := p.pending[:n:n]
		p.pending = p.pending[n:]
		p.mu.Unlock()
		if n == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.cfg.Store.AckOutbox(ctx, batch...); err != nil {
			// The relay publishes these again later with the same message
			// id; JetStream drops the duplicates.
			p.log.Warn("forget outbox entries", zap.Int("count", len(batch)), zap.Error(err))
		}
		cancel()
	}
}

func (p *Publisher) confirmed(m linkflow.Message) {
	if m.Outbox == "" {
		return
	}
	p.mu.Lock()
	p.pending = append(p.pending, m)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Publish puts each message on JetStream and waits for JetStream to store
// it. It tries every message and returns the errors of those that failed;
// they stay in the outbox for the relay. A message without an id is
// skipped: one the store says must wait (linkflow.Finished).
func (p *Publisher) Publish(ctx context.Context, msgs ...linkflow.Message) error {
	var errs []error
	for _, m := range msgs {
		if m.ID == "" {
			continue // not to be published now (the relay will)
		}
		nm := &nats.Msg{Subject: m.Subject, Data: m.Data}
		ack, err := p.cfg.JetStream.PublishMsg(ctx, nm, jetstream.WithMsgID(m.ID))
		if err != nil {
			errs = append(errs, fmt.Errorf("publish %s: %w", m.ID, err))
			continue
		}
		m.Seq = ack.Sequence
		p.confirmed(m)
	}
	return errors.Join(errs...)
}
