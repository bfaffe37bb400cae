package outbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Feed reads an organization's events in the order the events stream holds
// them, for GET /v1/events: JetStream already keeps every event, in order,
// for the event retention, so the feed needs no log of its own. A cursor is
// a stream sequence, stable for as long as the stream keeps the event.
type Feed struct {
	js jetstream.JetStream
}

// NewFeed returns a feed of the events stream js holds.
func NewFeed(js jetstream.JetStream) *Feed { return &Feed{js: js} }

// FeedEntry is one event in the stream: where, and which.
type FeedEntry struct {
	Seq     uint64
	EventID string
}

// Read returns up to limit of org's events after sequence after (0: from the
// oldest kept), and whether more may follow.
func (f *Feed) Read(ctx context.Context, org string, after uint64, limit int) ([]FeedEntry, bool, error) {
	if after == math.MaxUint64 {
		return nil, false, nil // nothing can follow
	}
	// One plain ephemeral consumer per page, deleted after it: an ordered
	// consumer resets itself on its first fetch, leaving a second consumer
	// behind for its inactive threshold (minutes, for a feed polled every
	// second). The threshold here only covers a process that dies between.
	cons, err := f.js.CreateConsumer(ctx, StreamEvents, jetstream.ConsumerConfig{
		FilterSubjects:    []string{EventsOf(org)},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 10 * time.Second,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return nil, false, fmt.Errorf("read events: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = f.js.DeleteConsumer(dctx, StreamEvents, cons.CachedInfo().Name)
	}()
	batch, err := cons.FetchNoWait(limit)
	if err != nil {
		return nil, false, fmt.Errorf("read events: %w", err)
	}
	var out []FeedEntry
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		e, err := ParseEvent(m.Data())
		if err != nil || e.OrgID != org {
			continue
		}
		out = append(out, FeedEntry{Seq: md.Sequence.Stream, EventID: e.EventID})
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, false, fmt.Errorf("read events: %w", err)
	}
	return out, len(out) == limit, nil
}

// ErrBadCursor is a feed cursor that is not a stream sequence.
var ErrBadCursor = errors.New("not an events cursor")

// ParseCursor reads a feed cursor ("" is the start).
func ParseCursor(c string) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(c, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != c {
		return 0, ErrBadCursor
	}
	return n, nil
}

// FormatCursor writes the cursor after sequence seq.
func FormatCursor(seq uint64) string { return strconv.FormatUint(seq, 10) }
