package outbox_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
)

// pullSetup makes the streams on a real JetStream server and a PullConfig
// for the events consumer; ensure, when given, replaces its Ensure.
func pullSetup(t *testing.T) (jetstream.JetStream, outbox.PullConfig) {
	t.Helper()
	_, _, js := testenv.NATS(t)
	if err := outbox.EnsureStreams(context.Background(), js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	return js, outbox.PullConfig{
		JetStream: js, Stream: outbox.StreamEvents, Consumer: outbox.DispatcherConsumer,
		Ensure: func(ctx context.Context) (jetstream.Consumer, error) {
			return outbox.EnsureDispatcherConsumer(ctx, js, outbox.DispatcherConsumerConfig{})
		},
		Batch: 10, Expiry: time.Second, // heartbeats every 500ms
		Backoff: func(int) time.Duration { return 10 * time.Millisecond },
		Logger:  zaptest.NewLogger(t),
	}
}

// next returns the next message's data, or fails the test by the deadline.
func next(t *testing.T, msgs <-chan jetstream.Msg, what string) string {
	t.Helper()
	select {
	case m := <-msgs:
		_ = m.Ack()
		return string(m.Data())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no message in 20s", what)
		return ""
	}
}

// A consumer deleted under a running Pull, again and again, is created
// again each time: the message published next is taken.
func TestPullCreatesADeletedConsumerAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, cfg := pullSetup(t)
	p, err := outbox.StartPull(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan jetstream.Msg)
	ended := make(chan error, 1)
	go func() {
		for {
			m, err := p.Next(ctx)
			if err != nil {
				ended <- err
				return
			}
			msgs <- m
		}
	}()
	publish := func(i int) {
		m := outbox.EventMessage("org_x", "evt_"+strconv.Itoa(i), "link.succeeded")
		if _, err := js.Publish(ctx, m.Subject, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	publish(0)
	next(t, msgs, "before any deletion")
	for i := 1; i <= 3; i++ {
		if err := js.DeleteConsumer(ctx, outbox.StreamEvents, outbox.DispatcherConsumer); err != nil {
			t.Fatal(err)
		}
		publish(i)
		// The new consumer delivers everything the stream holds.
		want := outbox.EventMessage("org_x", "evt_"+strconv.Itoa(i), "link.succeeded")
		testenv.Eventually(t, 20*time.Second, "the message after deletion "+strconv.Itoa(i), func() bool {
			return next(t, msgs, "after deletion "+strconv.Itoa(i)) == string(want.Data)
		})
	}
	p.Drain()
	p.Drain() // safe twice
	select {
	case err := <-ended:
		if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			t.Fatalf("Next after Drain: %v", err)
		}
	case m := <-msgs:
		_ = m.Ack() // one still buffered: then the end
		if err := <-ended; !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			t.Fatalf("Next after Drain: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Next did not end after Drain")
	}
}

// Drain ends a Pull that waits to create its consumer again, however long
// its backoff, and the consumer it may have made is not consumed from.
func TestPullDrainEndsTheWaitToCreateAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, cfg := pullSetup(t)
	var ensured, failing atomic.Int32
	ensure := cfg.Ensure
	cfg.Ensure = func(ctx context.Context) (jetstream.Consumer, error) {
		ensured.Add(1)
		if failing.Load() == 1 {
			return nil, errors.New("refused for the test")
		}
		return ensure(ctx)
	}
	cfg.Backoff = func(attempt int) time.Duration {
		if attempt == 1 {
			return 10 * time.Millisecond
		}
		return time.Hour
	}
	p, err := outbox.StartPull(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := p.Next(ctx)
		ended <- err
	}()
	failing.Store(1)
	if err := js.DeleteConsumer(ctx, outbox.StreamEvents, outbox.DispatcherConsumer); err != nil {
		t.Fatal(err)
	}
	// Once the first attempt failed, the Pull waits an hour.
	testenv.Eventually(t, 20*time.Second, "an attempt to create the consumer again", func() bool { return ensured.Load() >= 2 })
	p.Drain()
	select {
	case err := <-ended:
		if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			t.Fatalf("Next after Drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not end the wait to create the consumer again")
	}
}

// A context that ends while the consumer is being created again ends Next.
func TestPullNextEndsWithItsContext(t *testing.T) {
	t.Parallel()
	js, cfg := pullSetup(t)
	cfg.Backoff = func(int) time.Duration { return time.Hour }
	p, err := outbox.StartPull(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Drain()
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		_, err := p.Next(ctx)
		ended <- err
	}()
	if err := js.DeleteConsumer(context.Background(), outbox.StreamEvents, outbox.DispatcherConsumer); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			t.Fatalf("Next after its context ended: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Next did not end with its context")
	}
}

// A JetStream that cannot create the consumer yet at start (a cluster
// electing a leader answers with timeouts) is waited out: StartPull tries
// again and then takes messages. A configuration it refuses fails at once.
func TestStartPullWaitsOutAJetStreamNotReady(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, cfg := pullSetup(t)
	ensure := cfg.Ensure
	var calls atomic.Int32
	cfg.Ensure = func(ctx context.Context) (jetstream.Consumer, error) {
		if calls.Add(1) <= 2 {
			return nil, context.DeadlineExceeded
		}
		return ensure(ctx)
	}
	p, err := outbox.StartPull(ctx, cfg)
	if err != nil {
		t.Fatalf("start after two timeouts: %v", err)
	}
	t.Cleanup(p.Drain)
	if _, err := js.Publish(ctx, outbox.SubjectEvents+"org_1.link.succeeded", []byte("after the wait")); err != nil {
		t.Fatal(err)
	}
	msg, err := p.Next(ctx)
	if err != nil || string(msg.Data()) != "after the wait" || calls.Load() != 3 {
		t.Fatalf("next: %v, %v after %d tries", msg, err, calls.Load())
	}
	_ = msg.Ack()

	// What no wait heals fails at once: a configuration JetStream refuses,
	// one the client refuses (no API error in it), a missing stream.
	for _, refusal := range []error{&jetstream.APIError{Code: 400, ErrorCode: 10084, Description: "consumer config invalid"},
		jetstream.ErrInvalidConsumerName, jetstream.ErrStreamNotFound} {
		calls.Store(0)
		cfg.Ensure = func(context.Context) (jetstream.Consumer, error) {
			calls.Add(1)
			return nil, refusal
		}
		if _, err := outbox.StartPull(ctx, cfg); !errors.Is(err, refusal) || calls.Load() != 1 {
			t.Fatalf("%v: %v after %d tries", refusal, err, calls.Load())
		}
	}
	// A JetStream that cannot yet (a 503: no leader) is waited out for up to
	// StartWait, then the error is returned.
	calls.Store(0)
	cfg.StartWait = 200 * time.Millisecond
	cfg.Ensure = func(context.Context) (jetstream.Consumer, error) {
		calls.Add(1)
		return nil, &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	}
	if _, err := outbox.StartPull(ctx, cfg); err == nil || calls.Load() < 2 {
		t.Fatalf("a JetStream that stays unavailable: %v after %d tries", err, calls.Load())
	}
}
