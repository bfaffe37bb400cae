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
// LINKFLOW_DLQ). The copy carries the original's data: ids only.
func (w *Worker) deadLetter(msg jetstream.Msg, reason, linkID string) {
	deliveries := ""
	if md, err := msg.Metadata(); err == nil {
		deliveries = strconv.FormatUint(md.NumDelivered, 10)
	}
	w.publishDeadLetter(msg.Subject(), msg.Data(), reason, linkID, deliveries)
}

// redeliveryBackoff is how long a message waits before it comes back when
// its link could not even begin (Redis is down): the worker's backoff at
// the message's delivery count. Every delivery counts against the
// consumer's MaxDeliver (20), past which the message is dead-lettered; a
// flat second spent them in a 20-second outage and stranded the links, a
// growing pause spends them in about 14 minutes.
func (w *Worker) redeliveryBackoff(msg jetstream.Msg) time.Duration {
	n := 1
	if md, err := msg.Metadata(); err == nil {
		n = int(min(md.NumDelivered, 64))
	}
	return w.backoff(max(n, 1))
}

func (w *Worker) publishDeadLetter(subject string, data []byte, reason, linkID, deliveries string) {
	out := &nats.Msg{Subject: outbox.SubjectDeadLetterLinks, Data: data, Header: nats.Header{}}
	out.Header.Set(outbox.HeaderReason, reason)
	out.Header.Set(outbox.HeaderOriginalSubject, subject)
	if linkID != "" {
		out.Header.Set(outbox.HeaderLinkID, linkID)
	}
	if deliveries != "" {
		out.Header.Set(outbox.HeaderDeliveries, deliveries)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := w.cfg.JetStream.PublishMsg(ctx, out); err != nil {
		w.log.Error("dead-letter", zap.String("link_id", linkID), zap.String("reason", reason), zap.Error(err))
		return
	}
	w.cfg.Metrics.deadLettered()
	w.log.Warn("dead-lettered", zap.String("link_id", linkID), zap.String("reason", reason))
}

// deadLetterPatience is how long failDeadLettered tries: longer than any
// Redis outage that should find the link still waiting.
const deadLetterPatience = time.Hour

// failDeadLettered fails the link of a dead-lettered message, unless it
// ended. Its deliveries may have run out because Redis was down all along,
// and no other message will come for the link: so it tries until Redis
// answers (or a session that still holds the link ends it), for up to
// deadLetterPatience. It reports false when the worker stops first.
func (w *Worker) failDeadLettered(cm outbox.Claimed) bool {
	give := w.cfg.Clock.Now().Add(deadLetterPatience)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fin, err := w.cfg.Store.FailLink(ctx, cm.OrgID, cm.LinkID, linkflow.LinkError{
			Code: linkflow.FailureAttemptsExhausted, Message: "The link could not be processed: its message was delivered too many times.",
		})
		if fin != nil {
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
		t := w.cfg.Clock.NewTimer(w.backoff(attempt))
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

// onMaxDeliveries handles JetStream's advisory that a claimed message was
// delivered MaxDeliver times without an ack: it copies the message to the
// dead-letter stream, fails its link (unless it finished) and removes it.
// One worker of the fleet gets each advisory (queue subscription); each is
// handled on a goroutine of its own, as failing its link may wait for Redis.
func (w *Worker) onMaxDeliveries(m *nats.Msg) {
	w.dlMu.Lock()
	defer w.dlMu.Unlock()
	if w.dlClosed {
		return // stopping: JetStream keeps the message
	}
	w.bgWG.Add(1)
	go func() {
		defer w.bgWG.Done()
		w.maxDeliveries(m)
	}()
}

func (w *Worker) maxDeliveries(m *nats.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil {
		w.log.Warn("bad max deliveries advisory", zap.Error(err))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := w.cfg.JetStream.Stream(ctx, adv.Stream)
	if err != nil {
		w.log.Warn("max deliveries: stream", zap.Error(err))
		return
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		w.log.Warn("max deliveries: get message", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
		return
	}
	cm, _ := outbox.ParseClaimed(raw.Data)
	w.publishDeadLetter(raw.Subject, raw.Data, fmt.Sprintf("max deliveries (%d) reached", adv.Deliveries),
		cm.LinkID, strconv.FormatUint(adv.Deliveries, 10))
	if cm.LinkID != "" && cm.OrgID != "" && !w.failDeadLettered(cm) {
		return // stopping: the message stays, and so does its dead letter
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second) // ctx may be long gone
	defer dcancel()
	if err := stream.DeleteMsg(dctx, adv.StreamSeq); err != nil {
		w.log.Warn("max deliveries: delete message", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
	}
}
