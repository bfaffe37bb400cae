package workflow

import (
	"context"
	"time"

	"github.com/linkflow/linkflow"
	"go.uber.org/zap"
)

// heartbeat is the one loop that keeps every session of the process alive:
// it renews all leases and fleet slots in one pipeline, extends JetStream ack
// deadlines of long sessions, and passes on what Redis says (a cancel request,
// an answered challenge) in case the NATS notification was lost. No session
// has a polling goroutine of its own.
func (w *Worker) heartbeat() {
	defer w.bgWG.Done()
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-w.bgStop:
			return
		case <-t.C:
			w.beat()
		}
	}
}

func (w *Worker) beat() {
	w.mu.Lock()
	sessions := make([]*session, 0, len(w.sessions))
	for _, s := range w.sessions {
		sessions = append(sessions, s)
	}
	w.mu.Unlock()
	if len(sessions) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Heartbeat)
	defer cancel()

	refs := make([]linkflow.LeaseRef, len(sessions))
	var slots []linkflow.SlotRef
	for i, s := range sessions {
		refs[i] = linkflow.LeaseRef{OrgID: s.link.OrgID, LinkID: s.link.ID, Token: s.r.Token}
		if s.holder != "" {
			slots = append(slots, linkflow.SlotRef{Integration: s.integ, Holder: s.holder})
		}
	}
	states, err := w.cfg.Store.Heartbeat(ctx, refs, slots, w.cfg.LeaseTTL)
	if err != nil {
		w.log.Warn("renew leases and slots", zap.Int("sessions", len(refs)), zap.Error(err))
	}
	progressEvery := (w.cfg.Consumer.AckWait / 3).Nanoseconds()
	now := time.Now().UnixNano()
	for i, s := range sessions {
		if i < len(states) {
			switch st := states[i]; {
			case st.Lost:
				s.log.Warn("lease lost")
				s.cancel(errLeaseLost)
				continue
			case st.CancelRequested:
				s.requestCancel()
			}
			if states[i].InputReady {
				s.inputReady()
			}
		}
		if now-s.lastProgress.Load() >= progressEvery {
			_ = s.msg.InProgress()
			s.lastProgress.Store(now)
		}
	}
}
