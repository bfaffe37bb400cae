// Package startstop is the lifecycle every background service of linkflow
// shares (river's startstop is the model): Start(ctx) error starts it once,
// and a start that fails leaves nothing running; Stop() stops it once, is
// safe to call twice and before Start; and a Group starts services in one
// declared order and stops them in the reverse order.
package startstop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Service is a background service.
type Service interface {
	// Start starts the service and returns once it runs. A service that
	// fails to start cleans up after itself and returns the error.
	Start(ctx context.Context) error
	// Stop stops the service and returns once it stopped. It is safe to call
	// twice, and before Start.
	Stop()
}

// ErrStarted is returned by a second Start.
var ErrStarted = errors.New("already started")

// Once runs a service's start once and its stop once, and only the stop of a
// start that succeeded. Embed it, or hold one, in a service.
type Once struct {
	mu      sync.Mutex
	started bool
	stopped bool
	stop    func()
}

// Start runs start unless the service started (or stopped) already. start
// returns the func that stops what it started; when it fails instead, it
// must leave nothing running.
func (o *Once) Start(start func() (stop func(), err error)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.started || o.stopped {
		return ErrStarted
	}
	stop, err := start()
	if err != nil {
		return err
	}
	o.started, o.stop = true, stop
	return nil
}

// Stop runs the stop of a successful start, once.
func (o *Once) Stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		return
	}
	o.stopped = true
	if o.started && o.stop != nil {
		o.stop()
	}
}

// Group is services started in order and stopped in reverse order.
type Group struct {
	names    []string
	services []Service
	started  int
	once     Once
}

// Add appends a service to the group under a name for errors.
func (g *Group) Add(name string, s Service) {
	g.names, g.services = append(g.names, name), append(g.services, s)
}

// Start starts every service in the order added. When one fails, those
// already started are stopped, in reverse order, and its error returned.
func (g *Group) Start(ctx context.Context) error {
	return g.once.Start(func() (func(), error) {
		for i, s := range g.services {
			if err := s.Start(ctx); err != nil {
				g.stopFrom(i - 1)
				return nil, fmt.Errorf("start %s: %w", g.names[i], err)
			}
		}
		return func() { g.stopFrom(len(g.services) - 1) }, nil
	})
}

// Stop stops every started service, in reverse order. It is safe to call
// twice.
func (g *Group) Stop() { g.once.Stop() }

func (g *Group) stopFrom(i int) {
	for ; i >= 0; i-- {
		g.services[i].Stop()
	}
}

// Every calls round every interval in the background, each call bounded by
// timeout, until the returned stop is called; stop cancels a call in
// progress (its context) and waits for it to end. A background service's Start hands it to Once.Start.
func Every(interval, timeout time.Duration, round func(ctx context.Context)) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	// Stop cancels a round in progress: it need not wait out a round that
	// hangs on a server that does not answer.
	base, cancelRounds := context.WithCancel(context.Background())
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				select {
				case <-quit: // both were ready: stopping wins
					return
				default:
				}
				ctx, cancel := context.WithTimeout(base, timeout)
				round(ctx)
				cancel()
			}
		}
	}()
	return func() { close(quit); cancelRounds(); <-done }
}
