package workflow

import (
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
