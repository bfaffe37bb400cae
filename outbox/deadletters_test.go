package outbox_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
)

// deadLetter writes a dead letter as a worker does.
func deadLetter(t *testing.T, js jetstream.JetStream, subject string, linkID, reason string) uint64 {
	t.Helper()
	m := outbox.ClaimedMessage("org_x", linkID, "tmobile")
	out := &nats.Msg{Subject: outbox.SubjectDeadLetterLinks, Data: m.Data, Header: nats.Header{}}
	out.Header.Set(outbox.HeaderReason, reason)
	out.Header.Set(outbox.HeaderOriginalSubject, subject)
	out.Header.Set(outbox.HeaderLinkID, linkID)
	out.Header.Set(outbox.HeaderDeliveries, "20")
	ack, err := js.PublishMsg(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// Dead letters are listed newest last, within a limit, with their headers;
// a replay puts one back on its original subject and deletes it, once.
func TestDeadLettersListAndReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	if err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	if dls, total, err := outbox.DeadLetters(ctx, js, 10); err != nil || total != 0 || len(dls) != 0 {
		t.Fatalf("empty: %v %d %v", dls, total, err)
	}
	var seqs []uint64
	for i := range 4 {
		seqs = append(seqs, deadLetter(t, js, outbox.SubjectClaimed+"tmobile", "link_"+strconv.Itoa(i), "max deliveries (20) reached"))
	}
	dls, total, err := outbox.DeadLetters(ctx, js, 2)
	if err != nil || total != 4 || len(dls) != 2 || dls[0].Seq != seqs[2] || dls[1].Seq != seqs[3] {
		t.Fatalf("newest 2: %+v %d %v", dls, total, err)
	}
	d := dls[1]
	if d.LinkID != "link_3" || d.Reason != "max deliveries (20) reached" || d.OriginalSubject != outbox.SubjectClaimed+"tmobile" ||
		d.Deliveries != 20 || d.Time.IsZero() || time.Since(d.Time) > time.Minute {
		t.Fatalf("dead letter %+v", d)
	}

	// Replay the newest: it is on the links stream again, and gone from the
	// dead letters.
	got, err := outbox.ReplayDeadLetter(ctx, js, seqs[3])
	if err != nil || got.LinkID != "link_3" {
		t.Fatalf("replay: %+v %v", got, err)
	}
	links, err := js.Stream(ctx, outbox.StreamLinks)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := links.GetLastMsgForSubject(ctx, outbox.SubjectClaimed+"tmobile")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := outbox.ParseClaimed(raw.Data); err != nil || c.LinkID != "link_3" || c.OrgID != "org_x" {
		t.Fatalf("replayed message %s: %+v %v", raw.Data, c, err)
	}
	if _, err := outbox.ReplayDeadLetter(ctx, js, seqs[3]); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("replayed twice: %v", err)
	}
	// The list skips the hole the replay left and still shows 2.
	dls, total, err = outbox.DeadLetters(ctx, js, 2)
	if err != nil || total != 3 || len(dls) != 2 || dls[0].Seq != seqs[1] || dls[1].Seq != seqs[2] {
		t.Fatalf("after the replay: %+v %d %v", dls, total, err)
	}
	if st, _ := links.Info(ctx); st.State.Msgs != 1 {
		t.Fatalf("links stream holds %d messages, want the one replayed", st.State.Msgs)
	}

	// Only claimed messages go back.
	odd := deadLetter(t, js, "linkflow.events.org_x.link.failed", "link_9", "unparseable message")
	if _, err := outbox.ReplayDeadLetter(ctx, js, odd); !errors.Is(err, outbox.ErrNotReplayable) {
		t.Fatalf("replay of another subject: %v", err)
	}
	if dls, _, _ := outbox.DeadLetters(ctx, js, 100); len(dls) != 4 {
		t.Fatalf("a refused replay deleted the dead letter: %+v", dls)
	}
}
