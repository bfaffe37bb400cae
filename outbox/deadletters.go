package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is a message in the dead-letter stream (StreamDLQ): a copy of
// a claimed message the workers gave up on, with why.
type DeadLetter struct {
	// Seq is its sequence in the dead-letter stream: what replay names.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Reason, LinkID, OriginalSubject and Deliveries are its headers
	// (HeaderReason, ...); LinkID and Deliveries may be empty.
	Reason          string `json:"reason"`
	LinkID          string `json:"linkId,omitempty"`
	OriginalSubject string `json:"originalSubject"`
	Deliveries      int    `json:"deliveries,omitempty"`
	// Data is the original message's payload: ids only.
	Data []byte `json:"-"`
}

func deadLetterOf(seq uint64, at time.Time, h nats.Header, data []byte) DeadLetter {
	n, _ := strconv.Atoi(h.Get(HeaderDeliveries))
	return DeadLetter{Seq: seq, Time: at, Reason: h.Get(HeaderReason), LinkID: h.Get(HeaderLinkID),
		OriginalSubject: h.Get(HeaderOriginalSubject), Deliveries: n, Data: data}
}

// DeadLetters returns the newest dead letters, up to limit, oldest first,
// and how many the stream holds in all.
func DeadLetters(ctx context.Context, js jetstream.JetStream, limit int) ([]DeadLetter, uint64, error) {
	stream, err := js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, 0, fmt.Errorf("dead letters: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("dead letters: %w", err)
	}
	st := info.State
	if st.Msgs == 0 || limit <= 0 {
		return nil, st.Msgs, nil
	}
	want := min(uint64(limit), st.Msgs)
	// Replays delete messages, so the newest limit sequences may hold
	// fewer than limit letters: start further back until they do.
	start := st.FirstSeq
	if st.LastSeq >= want && st.LastSeq-want+1 > st.FirstSeq {
		start = st.LastSeq - want + 1
	}
	for {
		out, err := readDeadLetters(ctx, js, start, int(st.LastSeq-start+1))
		if err != nil {
			return nil, st.Msgs, err
		}
		if uint64(len(out)) >= want || start == st.FirstSeq {
			if uint64(len(out)) > want {
				out = out[uint64(len(out))-want:]
			}
			return out, st.Msgs, nil
		}
		back := 2 * (want - uint64(len(out)))
		start = max(st.FirstSeq, start-min(start, back))
	}
}

// readDeadLetters reads up to n dead letters from sequence start on.
func readDeadLetters(ctx context.Context, js jetstream.JetStream, start uint64, n int) ([]DeadLetter, error) {
	cons, err := js.OrderedConsumer(ctx, StreamDLQ, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
		InactiveThreshold: 10 * time.Second, // one listing's: gone soon after
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var out []DeadLetter
	for len(out) < n {
		batch, err := cons.FetchNoWait(min(n-len(out), 256))
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			out = append(out, deadLetterOf(md.Sequence.Stream, md.Timestamp, m.Headers(), m.Data()))
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		if got == 0 {
			break
		}
	}
	return out, nil
}

// ErrNotReplayable is a dead letter that cannot go back to the workers: it
// names no claimed-links subject to return to.
var ErrNotReplayable = errors.New("the dead letter names no claimed-links subject to return to")

// ReplayDeadLetter hands dead letter seq back to the workers: it publishes
// its payload again to its original subject (SubjectClaimed +
// integration), then deletes it from the dead-letter stream. The workers
// decide from the link's state in Redis what it means: a link that ended
// meanwhile is acknowledged and nothing runs again; a link whose lease ran
// out is run again. The publish carries a message id derived from seq, so
// replaying one dead letter twice within the duplicate window publishes it
// once. It returns jetstream.ErrMsgNotFound when there is no such dead
// letter.
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (*DeadLetter, error) {
	stream, err := js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	dl := deadLetterOf(raw.Sequence, raw.Time, raw.Header, raw.Data)
	integ, ok := strings.CutPrefix(dl.OriginalSubject, SubjectClaimed)
	if !ok || integ == "" || strings.ContainsAny(integ, ".*> ") {
		return &dl, fmt.Errorf("replay dead letter %d (subject %q): %w", seq, dl.OriginalSubject, ErrNotReplayable)
	}
	msg := &nats.Msg{Subject: dl.OriginalSubject, Data: dl.Data}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("dlq-replay-"+strconv.FormatUint(seq, 10))); err != nil {
		return &dl, fmt.Errorf("replay dead letter %d: publish: %w", seq, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return &dl, fmt.Errorf("replay dead letter %d: published, but not deleted from %s: %w", seq, StreamDLQ, err)
	}
	return &dl, nil
}
