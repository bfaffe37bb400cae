package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// OutboxStore is what the publisher needs from the store: forgetting outbox
// entries once JetStream confirmed them.
type OutboxStore interface {
	AckOutbox(ctx context.Context, entries ...store.OutboxEntry) error
}

// Publisher puts claimed and completion messages on JetStream. Every message
// it publishes was first recorded in the organization's outbox in Redis; once
// JetStream confirms it, the outbox entry is removed (in batches). A message
// whose publish failed stays in the outbox and the sweeper publishes it again
// with the same message id, so a crash between the two neither loses nor
// doubles it.
type Publisher struct {
	js     jetstream.JetStream
	outbox OutboxStore
	log    *zap.Logger

	mu      sync.Mutex
	pending []store.OutboxEntry
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewPublisher returns a publisher; Start begins its outbox batching.
func NewPublisher(js jetstream.JetStream, outbox OutboxStore, log *zap.Logger) *Publisher {
	return &Publisher{js: js, outbox: outbox, log: log.Named("publisher"),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Start runs the batcher that forgets confirmed outbox entries.
func (p *Publisher) Start() {
	go p.loop()
}

// Stop flushes the last batch and stops. It is safe to call twice.
func (p *Publisher) Stop() {
	p.once.Do(func() { close(p.stop); <-p.done })
}

func (p *Publisher) loop() {
	defer close(p.done)
	for {
		select {
		case <-p.kick:
		case <-p.stop:
			p.flush()
			return
		}
		// Let a batch gather: one pipeline for many confirmations.
		select {
		case <-time.After(2 * time.Millisecond):
		case <-p.stop:
		}
		p.flush()
	}
}

func (p *Publisher) flush() {
	p.mu.Lock()
	batch := p.pending
	p.pending = nil
	p.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.outbox.AckOutbox(ctx, batch...); err != nil {
		// The sweeper republishes these later with the same message id;
		// JetStream drops the duplicate.
		p.log.Warn("forget outbox entries", zap.Int("count", len(batch)), zap.Error(err))
	}
}

func (p *Publisher) confirmed(e store.OutboxEntry) {
	p.mu.Lock()
	p.pending = append(p.pending, e)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// PublishClaimed publishes a link claimed message and waits for JetStream to
// store it.
func (p *Publisher) PublishClaimed(ctx context.Context, org, linkID, integration string) error {
	data, _ := json.Marshal(linkflow.ClaimedMessage{LinkID: linkID, OrgID: org, Attempt: 1})
	msg := &nats.Msg{Subject: linkflow.SubjectClaimed + integration, Data: data, Header: nats.Header{}}
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID("claim-"+linkID)); err != nil {
		return fmt.Errorf("publish claimed %s: %w", linkID, err)
	}
	p.confirmed(store.OutboxEntry{OrgID: org, Member: store.ClaimOutboxMember(linkID)})
	return nil
}

// PublishEvent publishes a completion event message and waits for JetStream
// to store it.
func (p *Publisher) PublishEvent(ctx context.Context, fin *linkflow.Finished) error {
	data, _ := json.Marshal(linkflow.EventMessage{OrgID: fin.OrgID, EventID: fin.EventID, StreamID: fin.StreamID})
	msg := &nats.Msg{Subject: linkflow.SubjectEvents + fin.EventType, Data: data}
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(fin.EventID)); err != nil {
		return fmt.Errorf("publish event %s: %w", fin.EventID, err)
	}
	p.confirmed(store.OutboxEntry{OrgID: fin.OrgID, Member: store.EventOutboxMember(fin.EventID, fin.StreamID)})
	return nil
}
