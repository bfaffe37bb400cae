package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/linkflow/linkflow/outbox"
)

// ListDeadLetters shows the newest dead letters (limit, default 100),
// oldest first.
func (a *Admin) ListDeadLetters(ctx context.Context, js jetstream.JetStream, limit int, asJSON bool) error {
	if limit < 0 {
		return fmt.Errorf("--limit %d: want a number of dead letters, or 0 for the default (100)", limit)
	}
	limit = cmp.Or(limit, 100)
	dls, total, err := outbox.DeadLetters(ctx, js, limit)
	if err != nil {
		return err
	}
	if asJSON {
		if dls == nil {
			dls = []outbox.DeadLetter{}
		}
		enc := json.NewEncoder(a.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Total       uint64              `json:"total"`
			DeadLetters []outbox.DeadLetter `json:"deadLetters"`
		}{total, dls})
	}
	if total == 0 {
		fmt.Fprintln(a.Out, "no dead letters")
		return nil
	}
	w := tabwriter.NewWriter(a.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tTIME\tLINK\tSUBJECT\tDELIVERIES\tREASON")
	for _, d := range dls {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), cmp.Or(d.LinkID, "-"),
			d.OriginalSubject, d.Deliveries, d.Reason)
	}
	_ = w.Flush()
	if uint64(len(dls)) < total {
		fmt.Fprintf(a.Out, "\nthe newest %d of %d (--limit shows more)\n", len(dls), total)
	}
	return nil
}

// ReplayDeadLetters hands dead letter seq, or all of them, back to the
// workers (outbox.ReplayDeadLetter), and says what it did with each.
func (a *Admin) ReplayDeadLetters(ctx context.Context, js jetstream.JetStream, seq uint64, all bool) error {
	seqs := []uint64{seq}
	if all {
		// Every dead letter there is now; those that come meanwhile wait
		// for the next run.
		dls, _, err := outbox.DeadLetters(ctx, js, 1<<30)
		if err != nil {
			return err
		}
		seqs = seqs[:0]
		for _, d := range dls {
			seqs = append(seqs, d.Seq)
		}
	}
	var errs []error
	replayed := 0
	for _, s := range seqs {
		d, err := outbox.ReplayDeadLetter(ctx, js, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			err = fmt.Errorf("dead letter %d: there is no such dead letter", s)
		}
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(a.Out, "%d: not replayed: %v\n", s, err)
			continue
		}
		replayed++
		fmt.Fprintf(a.Out, "%d: link %s back on %s\n", s, cmp.Or(d.LinkID, "-"), d.OriginalSubject)
	}
	fmt.Fprintf(a.Out, "replayed %d dead letters; the workers run each link that has not ended, and acknowledge the others\n", replayed)
	return errors.Join(errs...)
}
