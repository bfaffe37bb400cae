package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

// deadLetter copies a message the worker gives up on to the dead-letter
// stream, with why, so an operator can inspect it (nats stream view
// LINKFLOW_DLQ). The copy carries the original's data: ids only. The
// error is the copy's (logged here).
func (w *Worker) deadLetter(msg jetstream.Msg, reason, linkID string) error {
	n, seq := "", uint64(0)
	if md, err := msg.Metadata(); err == nil {
		n, seq = strconv.FormatUint(md.NumDelivered, 10), md.Sequence.Stream
	}
	return w.publishDeadLetter(msg.Subject(), seq, msg.Data(), reason, linkID, n)
}

// termDeadLettered removes from the work queue a message nothing else
// records once its copy is in the dead-letter stream; a copy JetStream
// refused (its storage full, or no answer) leaves the message to come back,
// and to be copied then, or by the max-deliveries advisory.
func (w *Worker) termDeadLettered(msg jetstream.Msg, reason, linkID string) {
	if err := w.deadLetter(msg, reason, linkID); err != nil {
		_ = msg.NakWithDelay(w.redeliveryBackoff(msg))
		return
	}
	_ = msg.Term()
}

// redeliveryBackoff is how long a message waits before it comes back when
// its link could not even begin (Redis is down): the worker's backoff at
// the message's delivery count. Every delivery counts against the
// consumer's MaxDeliver (20), past which the message is dead-lettered; a
// flat second spent them in a 20-second outage and stranded the links, a
// growing pause spends them in about 14 minutes.
func (w *Worker) redeliveryBackoff(msg jetstream.Msg) time.Duration {
	return w.backoff(deliveries(msg))
}

// deliveries is how many times m was delivered (1 when unknown).
func deliveries(m jetstream.Msg) int {
	if md, err := m.Metadata(); err == nil {
		return int(min(max(md.NumDelivered, 1), 64))
	}
	return 1
}

// publishDeadLetter copies the message seq of the work queue (0: unknown)
// to the dead-letter stream. The copy's message id names seq and the link,
// so a copy made twice within the duplicate window (an advisory handled
// again after its acknowledgement was lost) is kept once.
func (w *Worker) publishDeadLetter(subject string, seq uint64, data []byte, reason, linkID, deliveries string) error {
	out := &nats.Msg{Subject: outbox.SubjectDeadLetterLinks, Data: data, Header: nats.Header{}}
	out.Header.Set(outbox.HeaderReason, reason)
	out.Header.Set(outbox.HeaderOriginalSubject, subject)
	if linkID != "" {
		out.Header.Set(outbox.HeaderLinkID, linkID)
	}
	if deliveries != "" {
		out.Header.Set(outbox.HeaderDeliveries, deliveries)
	}
	if seq != 0 {
		// The link too: a sequence number comes back if the stream is
		// made again, within the dead letters' duplicate window.
		out.Header.Set(jetstream.MsgIDHeader, "dead-"+outbox.StreamLinks+"-"+strconv.FormatUint(seq, 10)+"-"+linkID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := w.cfg.JetStream.PublishMsg(ctx, out)
	if err != nil {
		w.log.Error("dead-letter", zap.String("link_id", linkID), zap.String("reason", reason), zap.Error(err))
		return err
	}
	if ack.Duplicate {
		return nil
	}
	w.cfg.Metrics.deadLettered()
	w.log.Warn("dead-lettered", zap.String("link_id", linkID), zap.String("reason", reason))
	return nil
}

// deadLetterPatience is how long failDeadLettered tries: longer than any
// Redis outage that should find the link still waiting.
const deadLetterPatience = time.Hour

// failDeadLettered fails the link of a dead-lettered message, unless it
// ended. Its deliveries may have run out because Redis was down all along,
// and no other message will come for the link: so it tries until Redis
// answers (or a session that still holds the link ends it), for up to
// deadLetterPatience. It reports false when the worker stops first.
// progress is called before each wait, which is at most 30 seconds.
func (w *Worker) failDeadLettered(cm outbox.Claimed, progress func()) bool {
	give := w.cfg.Clock.Now().Add(deadLetterPatience)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fin, err := w.cfg.Store.FailLink(ctx, cm.OrgID, cm.LinkID, linkflow.LinkError{
			Code: linkflow.FailureAttemptsExhausted, Message: "The link could not be processed: its message was delivered too many times.",
		})
		if fin != nil {
			w.cfg.Metrics.ended(linkflow.StatusFailed, linkflow.FailureAttemptsExhausted)
			_ = w.cfg.Publisher.Publish(ctx, fin.Event)
		}
		cancel()
		if err == nil || errors.Is(err, linkflow.ErrNotFound) {
			return true
		}
		if w.cfg.Clock.Now().After(give) {
			w.log.Error("max deliveries: the link could not be failed; it stays open (its dead letter can be replayed)",
				zap.String("link_id", cm.LinkID), zap.Error(err))
			return true
		}
		w.log.Warn("max deliveries: fail link; trying again", zap.String("link_id", cm.LinkID),
			zap.Int("attempt", attempt), zap.Error(err))
		progress()
		t := w.cfg.Clock.NewTimer(min(w.backoff(attempt), 30*time.Second))
		select {
		case <-w.bgStop:
			t.Stop()
			return false
		case <-t.Chan():
		}
	}
}

// maxDeliveriesAdvisory is the part of JetStream's advisory linkflow reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// takeAdvisories takes JetStream's advisories that a claimed message was
// delivered MaxDeliver times without an ack, from the stream that keeps
// them (outbox.StreamAdvisories) until one worker of the fleet has handled
// each. Each is handled on a goroutine of its own, as failing its link may
// wait for Redis.
func (w *Worker) takeAdvisories(ctx context.Context, pull *outbox.Pull) {
	defer w.fetchWG.Done()
	for {
		msg, err := pull.Next(ctx)
		if err != nil {
			return // Stop drained it
		}
		if w.stopping.Load() {
			_ = msg.Nak() // another worker handles it
			continue
		}
		w.bgWG.Add(1) // Stop waits for this loop before it waits for bgWG
		go func() {
			defer w.bgWG.Done()
			w.maxDeliveries(msg)
		}()
	}
}

// maxDeliveries handles one max-deliveries advisory: it copies the message
// to the dead-letter stream, fails its link (unless it ended) and removes
// the message from the work queue, then acknowledges the advisory. What
// fails on the way leaves the advisory to come back (each step is
// idempotent: the copy carries a message id, a link fails once); an
// advisory whose message is gone (handled, or aged out) is done.
func (w *Worker) maxDeliveries(m jetstream.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.Stream == "" || adv.StreamSeq == 0 {
		w.log.Warn("bad max deliveries advisory", zap.ByteString("advisory", m.Data()), zap.Error(err))
		_ = m.Term()
		return
	}
	again := func(what string, err error) {
		w.log.Warn("max deliveries: "+what+"; the advisory comes back", zap.String("stream", adv.Stream),
			zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
		_ = m.NakWithDelay(w.backoff(deliveries(m)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := w.cfg.JetStream.Stream(ctx, adv.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_ = m.Ack()
		return
	}
	if err != nil {
		again("stream", err)
		return
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		_ = m.Ack() // handled already, replayed, or aged out
		return
	}
	if err != nil {
		again("get message", err)
		return
	}
	cm, _ := outbox.ParseClaimed(raw.Data)
	if err := w.publishDeadLetter(raw.Subject, raw.Sequence, raw.Data, fmt.Sprintf("max deliveries (%d) reached", adv.Deliveries),
		cm.LinkID, strconv.FormatUint(adv.Deliveries, 10)); err != nil {
		again("dead-letter", err)
		return
	}
	if cm.LinkID != "" && cm.OrgID != "" && !w.failDeadLettered(cm, func() { _ = m.InProgress() }) {
		_ = m.Nak() // stopping: another worker handles it
		return
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second) // ctx may be long gone
	defer dcancel()
	if err := stream.DeleteMsg(dctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		again("delete message", err)
		return
	}
	_ = m.Ack()
}
