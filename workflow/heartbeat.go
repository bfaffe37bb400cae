package workflow

import (
	"context"
	"sync"
	"time"

	"github.com/linkflow/linkflow"
	"go.uber.org/zap"
)

// heartbeat is the one loop that keeps every session of the process alive:
// it extends JetStream ack deadlines of long sessions, renews all leases
// and fleet slots in one pipeline, and passes on what Redis says (a cancel
// request, an answered challenge) in case the NATS notification was lost.
// No session has a polling goroutine of its own.
//
// The renewal runs beside the loop, one at a time: a Redis master that
// stops answering (the start of a failover) holds the renewal, not the ack
// deadlines, so JetStream does not hand running sessions to other workers
// meanwhile, and a lease that lapsed is taken back when Redis answers
// (renew_lease.lua).
func (w *Worker) heartbeat() {
	defer w.bgWG.Done()
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	var renewing sync.WaitGroup
	defer renewing.Wait()
	busy := false
	done := make(chan struct{}, 1)
	for {
		select {
		case <-w.bgStop:
			return
		case <-done:
			busy = false
		case <-t.C:
			sessions := w.snapshot()
			if len(sessions) == 0 {
				continue
			}
			w.extendAcks(sessions)
			if busy {
				continue
			}
			busy = true
			renewing.Add(1)
			go func() {
				defer renewing.Done()
				w.renew(sessions)
				done <- struct{}{}
			}()
		}
	}
}

func (w *Worker) snapshot() []*session {
	w.mu.Lock()
	defer w.mu.Unlock()
	sessions := make([]*session, 0, len(w.sessions))
	for _, s := range w.sessions {
		sessions = append(sessions, s)
	}
	return sessions
}

// extendAcks tells JetStream that long sessions are still running, every
// third of the ack wait.
func (w *Worker) extendAcks(sessions []*session) {
	progressEvery := (w.cfg.Consumer.AckWait / 3).Nanoseconds()
	now := w.sinceStart()
	for _, s := range sessions {
		if now-s.lastProgress.Load() >= progressEvery && s.inProgress() {
			s.lastProgress.Store(now)
			w.cfg.Metrics.ackExtended()
		}
	}
}

// renew renews the sessions' leases and fleet slots and applies what Redis
// says of each.
func (w *Worker) renew(sessions []*session) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Heartbeat)
	defer cancel()
	refs := make([]linkflow.LeaseRef, len(sessions))
	var slots []linkflow.SlotRef
	for i, s := range sessions {
		refs[i] = linkflow.LeaseRef{OrgID: s.link.OrgID, LinkID: s.link.ID, Token: s.r.Token}
		if s.holder != "" {
			slots = append(slots, linkflow.SlotRef{Integration: s.integ, Holder: s.holder, LinkID: s.link.ID})
		}
	}
	w.renewing.Lock()
	states, err := w.cfg.Store.Heartbeat(ctx, refs, slots, w.cfg.LeaseTTL)
	w.renewing.Unlock()
	if err != nil {
		w.log.Warn("renew leases and slots", zap.Int("sessions", len(refs)), zap.Error(err))
	}
	for i, s := range sessions {
		if i >= len(states) {
			break
		}
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
}
