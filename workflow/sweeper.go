package workflow

import (
	"cmp"
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/startstop"
)

// SweepStore is what the sweeper needs from the store.
type SweepStore interface {
	TryLock(ctx context.Context, name string, ttl time.Duration) (bool, error)
	SweepLinks(ctx context.Context, limit int) (*linkflow.Sweep, error)
}

// SweeperConfig configures a Sweeper. Zero fields take the defaults.
type SweeperConfig struct {
	// Store and Publisher are required.
	Store     SweepStore
	Publisher Publisher
	Logger    *zap.Logger
	// Interval between sweeps. Default 1s. One process of the fleet sweeps
	// each round (a lock in Redis).
	Interval time.Duration
	// Batch bounds the links handled per shard and round. Default
	// 500.
	Batch int
	// Metrics, when set, counts the links the sweeper ends (the worker's).
	Metrics *Metrics
}

// Sweeper enforces link expiry on the server's clock (pending links past
// their expiry become expired, with their webhook) and prunes the link
// indexes of links whose retention ended. Nothing relies on a client
// polling.
type Sweeper struct {
	cfg  SweeperConfig
	log  *zap.Logger
	once startstop.Once
}

// NewSweeper returns a sweeper; Start runs it.
func NewSweeper(cfg SweeperConfig) (*Sweeper, error) {
	if cfg.Store == nil || cfg.Publisher == nil {
		return nil, errors.New("sweeper: Store and Publisher are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	cfg.Interval = cmp.Or(cfg.Interval, time.Second)
	cfg.Batch = cmp.Or(cfg.Batch, 500)
	return &Sweeper{cfg: cfg, log: cfg.Logger.Named("sweeper")}, nil
}

// Start runs the sweep loop in the background.
func (s *Sweeper) Start(ctx context.Context) error {
	return s.once.Start(func() (func(), error) {
		return startstop.Every(s.cfg.Interval, 10*s.cfg.Interval, func(ctx context.Context) {
			if err := s.Sweep(ctx, true); err != nil {
				s.log.Warn("sweep", zap.Error(err))
			}
		}), nil
	})
}

// Stop ends the loop. It is safe to call twice.
func (s *Sweeper) Stop() { s.once.Stop() }

// Sweep does one round. With lock set it first takes the fleet-wide lock and
// does nothing when another process holds it.
func (s *Sweeper) Sweep(ctx context.Context, lock bool) error {
	if lock {
		ok, err := s.cfg.Store.TryLock(ctx, "sweep", s.cfg.Interval*9/10)
		if err != nil || !ok {
			return err
		}
	}
	sw, err := s.cfg.Store.SweepLinks(ctx, s.cfg.Batch)
	errs := []error{err}
	for id, why := range sw.Unreadable {
		s.log.Error("a link could not be read, so it will not expire or fail by itself; it is off the sweeper's schedules",
			zap.String("link_id", id), zap.Error(why))
	}
	for _, fin := range sw.Expired {
		s.cfg.Metrics.ended(linkflow.StatusExpired, "")
		errs = append(errs, s.cfg.Publisher.Publish(ctx, fin.Event))
	}
	for _, fin := range sw.Overdue {
		s.log.Warn("a claimed link failed: no session recorded its outcome by its deadline (no worker serves its integration, or its message or commit was lost)",
			zap.String("org_id", fin.OrgID), zap.String("link_id", fin.LinkID))
		s.cfg.Metrics.ended(linkflow.StatusFailed, linkflow.FailureLinkExpired)
		errs = append(errs, s.cfg.Publisher.Publish(ctx, fin.Event))
	}
	return errors.Join(errs...)
}
