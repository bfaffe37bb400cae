package outbox

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// PullConfig says which durable consumer a Pull takes messages from, and
// how.
type PullConfig struct {
	JetStream jetstream.JetStream
	// Stream and Consumer name the consumer (Consumer is its durable name).
	Stream, Consumer string
	// Ensure creates the consumer, or updates it to its owner's settings.
	Ensure func(ctx context.Context) (jetstream.Consumer, error)
	// Batch and Expiry are the iterator's: see MessagesOptions.
	Batch  int
	Expiry time.Duration
	// Backoff is the wait before the nth attempt to create a consumer
	// again. Default: 100ms, doubling up to 30s.
	Backoff func(attempt int) time.Duration
	// StartWait is how long StartPull waits out a JetStream that cannot
	// create the consumer yet (a cluster electing a leader answers with
	// timeouts), trying again with Backoff, on real time. Default 1
	// minute.
	StartWait time.Duration
	// Clock times the waits to create the consumer again (not StartPull's,
	// which are on real time). Default: the real clock.
	Clock clockwork.Clock
	// Logger tells of a consumer found gone and created again. Default: none.
	Logger *zap.Logger
}

// Pull takes a durable consumer's messages for as long as its owner runs.
// A consumer can be deleted under a running process (by an operator, or
// with its stream). JetStream then ends the iterator; or, when the iterator
// was between pull requests, its heartbeats stop and it goes on pulling from
// nothing. Either way Pull creates the consumer again and goes on: without
// that, the process would look healthy while it takes nothing.
type Pull struct {
	cfg  PullConfig
	log  *zap.Logger
	done chan struct{} // closed by Drain

	mu       sync.Mutex // it, draining
	it       jetstream.MessagesContext
	draining bool
}

// StartPull creates the consumer and begins pulling its messages. A
// JetStream that cannot create it yet is waited out for up to StartWait;
// any other error fails at once.
func StartPull(ctx context.Context, cfg PullConfig) (*Pull, error) {
	if cfg.Backoff == nil {
		cfg.Backoff = func(attempt int) time.Duration {
			return min(100*time.Millisecond<<min(attempt-1, 20), 30*time.Second)
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.StartWait <= 0 {
		cfg.StartWait = time.Minute
	}
	p := &Pull{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	p.log = p.log.With(zap.String("consumer", cfg.Consumer))
	it, err := p.first(ctx)
	if err != nil {
		return nil, err
	}
	p.it = it
	return p, nil
}

// first creates the consumer and its iterator at start, trying again with
// backoff for up to StartWait while JetStream cannot yet (waitable); any
// other error (a configuration JetStream or the client refuses, a missing
// stream), or ctx ending, stops it at once. Its waits are on real time: a
// test's fake Clock must not hold a start.
func (p *Pull) first(ctx context.Context) (jetstream.MessagesContext, error) {
	deadline := time.Now().Add(p.cfg.StartWait)
	for attempt := 1; ; attempt++ {
		octx, cancel := context.WithTimeout(ctx, min(10*time.Second, max(time.Until(deadline), time.Second)))
		it, err := p.open(octx)
		cancel()
		if err == nil {
			return it, nil
		}
		left := time.Until(deadline)
		if ctx.Err() != nil || !waitable(err) || left <= 0 {
			return nil, err
		}
		p.log.Warn("create the consumer; trying again", zap.Int("attempt", attempt), zap.Error(err))
		t := time.NewTimer(min(p.cfg.Backoff(attempt), left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// waitable says whether JetStream may create a consumer when asked again:
// it did not answer in time, nothing answered, or it answered that it
// cannot serve for now (a 5xx: no leader, insufficient resources).
func waitable(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code >= 500
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrConsumerCreationResponseEmpty) || errors.Is(err, nats.ErrReconnectBufExceeded)
}

func (p *Pull) open(ctx context.Context) (jetstream.MessagesContext, error) {
	cons, err := p.cfg.Ensure(ctx)
	if err != nil {
		return nil, err
	}
	return cons.Messages(MessagesOptions(p.cfg.Batch, p.cfg.Expiry)...)
}

// Next returns the next message. It returns jetstream.ErrMsgIteratorClosed
// once Drain was called and the messages already pulled were returned, or
// when ctx has ended and the iterator reports an error or its end (ctx
// bounds the work of creating a consumer again; it does not interrupt a
// wait for messages). Other errors of the iterator (a missed heartbeat, a
// lost connection) are logged and waited out.
func (p *Pull) Next(ctx context.Context) (jetstream.Msg, error) {
	for {
		p.mu.Lock()
		it := p.it
		p.mu.Unlock()
		msg, err := it.Next()
		if err == nil {
			return msg, nil
		}
		if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if ctx.Err() != nil {
				return nil, jetstream.ErrMsgIteratorClosed
			}
			p.log.Warn("fetch", zap.Error(err))
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				p.recreateIfGone(ctx)
			}
			continue
		}
		if p.isDraining() || !p.reopen(ctx, err) {
			return nil, jetstream.ErrMsgIteratorClosed
		}
	}
}

// Drain stops pulling: Next returns the messages already pulled, then
// jetstream.ErrMsgIteratorClosed. It is safe to call twice, and while Next
// waits.
func (p *Pull) Drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return
	}
	p.draining = true
	close(p.done)
	p.it.Drain()
}

func (p *Pull) isDraining() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.draining
}

// recreateIfGone creates the consumer again if it does not exist. The
// iterator, which JetStream did not end, then pulls from the new one.
func (p *Pull) recreateIfGone(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if !ConsumerGone(ctx, p.cfg.JetStream, p.cfg.Stream, p.cfg.Consumer) {
		return
	}
	if _, err := p.cfg.Ensure(ctx); err != nil {
		p.log.Warn("create the consumer again", zap.Error(err))
		return
	}
	p.log.Error("the consumer was gone (was it deleted?): created it again")
}

// reopen creates the consumer and its iterator again after JetStream ended
// them, retrying with backoff; false when Drain or ctx ends it first.
func (p *Pull) reopen(ctx context.Context, why error) bool {
	p.log.Error("the consumer's messages ended (was it deleted?): creating it again", zap.Error(why))
	for attempt := 1; ; attempt++ {
		t := p.cfg.Clock.NewTimer(p.cfg.Backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-p.done:
			t.Stop()
			return false
		case <-t.Chan():
		}
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		it, err := p.open(octx)
		cancel()
		if err != nil {
			p.log.Warn("create the consumer again", zap.Int("attempt", attempt), zap.Error(err))
			continue
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.draining { // Drain found the old iterator: this one is stopped here
			it.Stop()
			return false
		}
		p.it = it
		p.log.Info("consuming again")
		return true
	}
}
