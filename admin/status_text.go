package admin

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/linkflow/linkflow/monitor"
)

// writeStatus writes a status report as text, a section at a time; a part
// that could not be read says so.
func writeStatus(out io.Writer, r monitor.Report) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "linkflow status at %s\n", r.At.Format(time.RFC3339))
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, "\nWARNINGS")
		for _, e := range r.Warnings {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	unread := "(could not be read: see errors)"

	fmt.Fprintln(w, "\nLINKS")
	if l := r.Links; l != nil {
		fmt.Fprintf(w, "  pending (not claimed)\t%d\n", l.Pending)
		fmt.Fprintf(w, "  queued (claimed, waiting for a worker)\t%d\n", l.Queued)
		fmt.Fprintf(w, "  in flight (running, MFA, or retrying)\t%d\n", l.InFlight)
		fmt.Fprintf(w, "  kept (any status, within retention)\t%d\n", l.Kept)
	} else {
		fmt.Fprintf(w, "  %s\n", unread)
	}
	for _, f := range r.Finished {
		var parts []string
		for _, s := range monitor.FinishedStatuses {
			parts = append(parts, fmt.Sprintf("%s %d", s, f.Counts[string(s)]))
		}
		fmt.Fprintf(w, "  ended in the last %s\t%s\n", monitor.Words(time.Duration(f.Seconds)*time.Second), strings.Join(parts, "  "))
	}

	fmt.Fprintln(w, "\nCONSUMER\tSTREAM\tPENDING\tACK PENDING\tREDELIVERED\tWAITING")
	if r.Consumers == nil {
		fmt.Fprintf(w, "  %s\n", unread)
	}
	for _, c := range r.Consumers {
		if c.Missing {
			fmt.Fprintf(w, "%s\t%s\t%d\t-\t-\t- (no worker serves this integration)\n", c.Name, c.Stream, c.Pending)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\n", c.Name, c.Stream, c.Pending, c.AckPending, c.Redelivered, c.Waiting)
	}
	fmt.Fprintln(w)
	switch o := r.Outbox; {
	case o == nil:
		fmt.Fprintf(w, "OUTBOX\t%s\n", unread)
	case o.Entries == 0:
		fmt.Fprintln(w, "OUTBOX\tempty")
	default:
		fmt.Fprintf(w, "OUTBOX\t%d entries, the oldest %s old\n", o.Entries, seconds(o.OldestSeconds))
	}
	switch rt := r.Retries; {
	case rt == nil:
		fmt.Fprintf(w, "WEBHOOK RETRIES\t%s\n", unread)
	case rt.NextDue == nil:
		fmt.Fprintln(w, "WEBHOOK RETRIES\tnone scheduled")
	case rt.OverdueSeconds > 0:
		fmt.Fprintf(w, "WEBHOOK RETRIES\t%d scheduled, the earliest overdue by %s\n", rt.Scheduled, seconds(rt.OverdueSeconds))
	default:
		fmt.Fprintf(w, "WEBHOOK RETRIES\t%d scheduled, the next due in %s\n", rt.Scheduled, monitor.Words(rt.NextDue.Sub(r.At)))
	}
	switch d := r.DeadLetters; {
	case d == nil:
		fmt.Fprintf(w, "DEAD LETTERS\t%s\n", unread)
	case d.Count == 0:
		fmt.Fprintln(w, "DEAD LETTERS\tnone")
	case d.Newest == nil: // its time could not be read
		fmt.Fprintf(w, "DEAD LETTERS\t%d (linkflow dlq list)\n", d.Count)
	default:
		fmt.Fprintf(w, "DEAD LETTERS\t%d, the newest at %s (linkflow dlq list)\n", d.Count, d.Newest.Format(time.RFC3339))
	}

	if f := r.Failures; f != nil {
		fmt.Fprintf(w, "\nFAILURES\t%d links failed in the last %s", f.Total, monitor.Words(time.Duration(f.Seconds)*time.Second))
		if f.Read > 0 && uint64(f.Read) < f.Total {
			fmt.Fprintf(w, " (codes of the %d newest, since %s)", f.Read, f.Since.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
		for _, c := range f.Codes {
			fmt.Fprintf(w, "  %s\t%d\n", c.Code, c.Count)
		}
	}

	if h := r.FailingHosts; h != nil {
		fmt.Fprintf(w, "\nFAILING WEBHOOK HOSTS (of %d scheduled deliveries read)", h.Sampled)
		if len(h.Hosts) == 0 {
			fmt.Fprint(w, ": none")
		}
		fmt.Fprintln(w)
		if len(h.Hosts) > 0 {
			fmt.Fprintln(w, "HOST\tDELIVERIES\tFAILING SINCE\tLAST ATTEMPT\tLAST ANSWER")
		}
		for _, x := range h.Hosts {
			answer := x.LastError
			if x.LastStatusCode > 0 {
				answer = strings.TrimSpace(fmt.Sprintf("%d %s", x.LastStatusCode, x.LastError))
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", x.Host, x.Deliveries, x.Since.Format(time.RFC3339),
				x.LastAttemptAt.Format(time.RFC3339), answer)
		}
	}

	if len(r.Probes) > 0 {
		fmt.Fprintln(w, "\nREADYZ\tADDRESS\tREADY\tCHECKS")
		for _, p := range r.Probes {
			ready, checks := "yes", p.Error
			if !p.Ready {
				ready = "NO"
			}
			if p.Error == "" {
				var parts []string
				for _, name := range slices.Sorted(maps.Keys(p.Checks)) {
					parts = append(parts, name+": "+p.Checks[name])
				}
				checks = strings.Join(parts, "; ")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Role, p.Addr, ready, checks)
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(w, "\nERRORS")
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}
