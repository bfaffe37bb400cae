package workflow

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// SweepStore is what the sweeper needs from the store.
type SweepStore interface {
	TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error)
	Orgs(ctx context.Context) ([]string, error)
	ExpireDue(ctx context.Context, org string, limit int) ([]*linkflow.Finished, error)
	PruneLinkIndexes(ctx context.Context, org string, limit int) (int, error)
	DueOutbox(ctx context.Context, org string, age time.Duration, limit int) ([]store.OutboxEntry, error)
	AckOutbox(ctx context.Context, entries ...store.OutboxEntry) error
	LinkIntegration(ctx context.Context, org, id string) (string, error)
	Event(ctx context.Context, org, streamID string) (*linkflow.StoredEvent, error)
}

// SweeperConfig configures a Sweeper. Zero fields take the defaults.
type SweeperConfig struct {
	// Store and Publisher are required.
	Store     SweepStore
	Publisher *Publisher
	Logger    *zap.Logger
	// Interval between sweeps. Default 1s. One process of the fleet sweeps
	// each round (a lock in Redis).
	Interval time.Duration
	// OutboxAge is how old an unconfirmed outbox entry must be before it is
	// published again. Default 15s.
	OutboxAge time.Duration
	// Batch bounds the links and outbox entries handled per organization and
	// round. Default 500.
	Batch int
}

// Sweeper enforces link expiry on the server's clock (pending links past
// their expiry become expired, with their webhook), republishes outbox
// entries JetStream never confirmed, and prunes the link indexes of links
// whose retention ended. Nothing relies on a client polling.
type Sweeper struct {
	cfg  SweeperConfig
	log  *zap.Logger
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewSweeper returns a sweeper; Start runs it.
func NewSweeper(cfg SweeperConfig) (*Sweeper, error) {
	if cfg.Store == nil || cfg.Publisher == nil {
		return nil, errors.New("sweeper: Store and Publisher are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	cfg.Interval = cmp.Or(cfg.Interval, time.Second)
	cfg.OutboxAge = cmp.Or(cfg.OutboxAge, 15*time.Second)
	cfg.Batch = cmp.Or(cfg.Batch, 500)
	return &Sweeper{cfg: cfg, log: cfg.Logger.Named("sweeper"), stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start runs the sweep loop in the background.
func (s *Sweeper) Start() {
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 10*s.cfg.Interval)
				if err := s.Sweep(ctx, true); err != nil {
					s.log.Warn("sweep", zap.Error(err))
				}
				cancel()
			}
		}
	}()
}

// Stop ends the loop. It is safe to call twice.
func (s *Sweeper) Stop() {
	s.once.Do(func() { close(s.stop); <-s.done })
}

// Sweep does one round. With lock set it first takes the fleet-wide lock and
// does nothing when another process holds it.
func (s *Sweeper) Sweep(ctx context.Context, lock bool) error {
	if lock {
		ok, err := s.cfg.Store.TryLock(ctx, "sweep", s.cfg.Interval*9/10)
		if err != nil || !ok {
			return err
		}
	}
	orgs, err := s.cfg.Store.Orgs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, org := range orgs {
		fins, err := s.cfg.Store.ExpireDue(ctx, org, s.cfg.Batch)
		errs = append(errs, err)
		for _, fin := range fins {
			errs = append(errs, s.cfg.Publisher.PublishEvent(ctx, fin))
		}
		_, err = s.cfg.Store.PruneLinkIndexes(ctx, org, s.cfg.Batch)
		errs = append(errs, err)
		entries, err := s.cfg.Store.DueOutbox(ctx, org, s.cfg.OutboxAge, s.cfg.Batch)
		errs = append(errs, err)
		for _, e := range entries {
			errs = append(errs, s.republish(ctx, e))
		}
	}
	return errors.Join(errs...)
}

func (s *Sweeper) republish(ctx context.Context, e store.OutboxEntry) error {
	switch e.Kind {
	case "claim":
		integ, err := s.cfg.Store.LinkIntegration(ctx, e.OrgID, e.LinkID)
		if errors.Is(err, linkflow.ErrNotFound) {
			return s.cfg.Store.AckOutbox(ctx, e)
		}
		if err != nil {
			return err
		}
		s.log.Info("republishing claim", zap.String("link_id", e.LinkID))
		return s.cfg.Publisher.PublishClaimed(ctx, e.OrgID, e.LinkID, integ)
	case "event":
		ev, err := s.cfg.Store.Event(ctx, e.OrgID, e.StreamID)
		if errors.Is(err, linkflow.ErrNotFound) {
			return s.cfg.Store.AckOutbox(ctx, e)
		}
		if err != nil {
			return err
		}
		s.log.Info("republishing event", zap.String("event_id", e.EventID))
		return s.cfg.Publisher.PublishEvent(ctx, &linkflow.Finished{OrgID: e.OrgID, EventID: e.EventID, EventType: ev.Type, StreamID: e.StreamID})
	}
	return s.cfg.Store.AckOutbox(ctx, e)
}
