package workflow

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// countingMsg counts the acks of a message; every other method is unused.
type countingMsg struct {
	jetstream.Msg
	inProgress, naks atomic.Int32
}

func (m *countingMsg) InProgress() error                { m.inProgress.Add(1); return nil }
func (m *countingMsg) NakWithDelay(time.Duration) error { m.naks.Add(1); return nil }

// Once a session settled its message (here a delayed nak after a transient
// failure), the heartbeat sends no in-progress ack for it: one that reached
// JetStream after the nak would move the redelivery to the ack wait.
func TestNoInProgressAfterTheMessageIsSettled(t *testing.T) {
	m := &countingMsg{}
	s := &session{msg: m}
	if !s.inProgress() || m.inProgress.Load() != 1 {
		t.Fatal("an unsettled message's ack deadline was not extended")
	}
	s.settle(func() error { return m.NakWithDelay(time.Second) })
	if s.inProgress() || m.inProgress.Load() != 1 {
		t.Fatalf("an in-progress ack followed the settling nak (%d sent)", m.inProgress.Load())
	}
}

// An operation without arguments beside one with some (stored as null)
// sends none, as the provider protocol has them absent, not null.
func TestOperationWithoutArgumentsSendsNone(t *testing.T) {
	stored := []json.RawMessage{json.RawMessage(`{"cardNumber":"4111111111111111"}`), json.RawMessage(`null`)}
	if got := operationArgs(stored, 0); string(got) != string(stored[0]) {
		t.Fatalf("operation 0: %s", got)
	}
	if got := operationArgs(stored, 1); got != nil {
		t.Fatalf("operation 1 without arguments sends %s", got)
	}
	if got := operationArgs(nil, 0); got != nil {
		t.Fatalf("a link without arguments sends %s", got)
	}
}

// The backoff after a transient failure never passes RetryMax, its jitter
// included.
func TestBackoffStaysWithinRetryMax(t *testing.T) {
	w := &Worker{cfg: Config{RetryBase: time.Second, RetryMax: time.Minute}}
	for attempt := 1; attempt < 40; attempt++ {
		for range 50 {
			if d := w.backoff(attempt); d > time.Minute || d <= 0 {
				t.Fatalf("attempt %d: backoff %s, RetryMax 1m", attempt, d)
			}
		}
	}
}
