package outbox

import (
	"cmp"
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow/internal/startstop"
)

// RelayConfig configures a Relay. Zero fields take the documented defaults.
type RelayConfig struct {
	// Store and Publisher are required.
	Store     Store
	Publisher *Publisher
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Interval between rounds. Default 1s.
	Interval time.Duration
	// Age is how old an unconfirmed entry must be before it is published
	// again: the publisher of a state change had that long to do it.
	// Default 15s.
	Age time.Duration
	// Batch bounds the entries published again per round. Default 500.
	Batch int
}

// Relay publishes again, as they are, the outbox entries JetStream never
// confirmed: their process died before publishing, or JetStream did not
// answer. Every worker process runs one; an entry taken by one relay is
// pushed back by Age, so relays rarely publish the same entry twice (and a
// duplicate is dropped by JetStream anyway).
type Relay struct {
	cfg  RelayConfig
	log  *zap.Logger
	once startstop.Once
}

// NewRelay returns a relay; Start runs it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Store == nil || cfg.Publisher == nil {
		return nil, errors.New("outbox: relay Store and Publisher are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	cfg.Interval = cmp.Or(cfg.Interval, time.Second)
	cfg.Age = cmp.Or(cfg.Age, 15*time.Second)
	cfg.Batch = cmp.Or(cfg.Batch, 500)
	return &Relay{cfg: cfg, log: cfg.Logger.Named("relay")}, nil
}

// Start runs the relay's rounds in the background.
func (r *Relay) Start(ctx context.Context) error {
	return r.once.Start(func() (func(), error) {
		return startstop.Every(r.cfg.Interval, 10*r.cfg.Interval, func(ctx context.Context) {
			if _, err := r.Round(ctx); err != nil {
				r.log.Warn("relay round", zap.Error(err))
			}
		}), nil
	})
}

// Stop ends the rounds. It is safe to call twice.
func (r *Relay) Stop() { r.once.Stop() }

// Round publishes the due entries once and reports how many it published.
func (r *Relay) Round(ctx context.Context) (int, error) {
	// An error may come with messages: the entries that must wait say why.
	msgs, err := r.cfg.Store.DueOutbox(ctx, r.cfg.Age, r.cfg.Batch)
	if len(msgs) == 0 {
		return 0, err
	}
	for _, m := range msgs {
		r.log.Info("publishing again", zap.String("message_id", m.ID), zap.String("subject", m.Subject))
	}
	return len(msgs), errors.Join(err, r.cfg.Publisher.Publish(ctx, msgs...))
}
