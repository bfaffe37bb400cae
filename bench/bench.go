package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Run runs the benchmark cfg describes (see the package documentation for
// its modes) and returns what it measured. It gives up after cfg.Timeout.
// Errors of single links are counted in the report; Run fails only when the
// run itself cannot go on (a deployment that does not start, a preload that
// fails).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	switch {
	case cfg.WorkerOnly:
		return runWorkerOnly(ctx, cfg)
	case cfg.DispatcherOnly:
		return runDispatcherOnly(ctx, cfg)
	default:
		return runEndToEnd(ctx, cfg)
	}
}

// progress writes line() to w every second, over itself, until the
// returned stop is called; stop ends the line and waits.
func progress(w io.Writer, line func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(w)
				return
			case <-t.C:
				fmt.Fprintf(w, "\r%s   ", line())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// poll calls sample every interval until it returns true or ctx ends.
// sample reads bench's own counters (or samples the processes it measures):
// this is a measurement loop, not a wait in a test.
func poll(ctx context.Context, interval time.Duration, sample func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !sample() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// parallel runs fn(i) for i in [0, n) on a few goroutines and returns the
// first error.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
