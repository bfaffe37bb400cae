package api

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow/monitor"
)

//go:embed operator/page.html
var opsHTML string

var opsTemplate = template.Must(template.New("ops").Parse(opsHTML))

// opsView is what the operator's page template renders: the report in
// words.
type opsView struct {
	Nonce     string
	RefreshMs int64
	// Fragment renders the numbers alone (<main id="status">), which the
	// page's script fetches to refresh itself.
	Fragment bool

	// Signed out: the form, with why the last try failed.
	FormError string
	// Signed in.
	SignedIn bool
	Problem  string

	At          string
	Links       *monitor.Links
	Statuses    []string
	Finished    []opsFinished
	Consumers   []monitor.Consumer
	Unread      map[string]bool
	Outbox      opsLine
	Retries     opsLine
	DeadLetters opsLine
	Failures    *monitor.Failures
	FailuresOf  string
	Hosts       []opsHost
	HostsRead   int
	HostsKnown  bool
	Ready       []opsCheck
	Warnings    []string
	Errors      []string
}

type opsFinished struct {
	Window string
	Counts []uint64
}

// opsLine is one number in words, flagged when it wants attention.
type opsLine struct {
	Text string
	Warn bool
}

type opsHost struct {
	Host, Since, LastAttempt, Answer string
	Deliveries                       int
}

type opsCheck struct {
	Process, Name, Result string
	OK                    bool
}

func newOpsView(rep *monitor.Report) *opsView {
	st := rep.Status
	v := &opsView{SignedIn: true, At: st.At.Format(time.RFC3339), Links: st.Links, Consumers: st.Consumers,
		Failures: st.Failures, Warnings: st.Warnings, Errors: st.Errors, Unread: map[string]bool{}}
	for _, s := range monitor.FinishedStatuses {
		v.Statuses = append(v.Statuses, string(s))
	}
	for _, f := range st.Finished {
		row := opsFinished{Window: "last " + monitor.Words(time.Duration(f.Seconds)*time.Second)}
		for _, s := range monitor.FinishedStatuses {
			row.Counts = append(row.Counts, f.Counts[string(s)])
		}
		v.Finished = append(v.Finished, row)
	}
	v.Unread["consumers"] = st.Consumers == nil
	v.Unread["finished"] = st.Finished == nil
	unread := opsLine{Text: "could not be read (see below)", Warn: true}
	switch o := st.Outbox; {
	case o == nil:
		v.Outbox = unread
	case o.Entries == 0:
		v.Outbox = opsLine{Text: "empty"}
	default:
		v.Outbox = opsLine{Text: fmt.Sprintf("%d entries, the oldest %s old", o.Entries, monitor.Words(secs(o.OldestSeconds))),
			Warn: o.OldestSeconds > 60}
	}
	switch r := st.Retries; {
	case r == nil:
		v.Retries = unread
	case r.NextDue == nil:
		v.Retries = opsLine{Text: "none scheduled"}
	case r.OverdueSeconds > 0:
		v.Retries = opsLine{Text: fmt.Sprintf("%d scheduled, the earliest overdue by %s", r.Scheduled, monitor.Words(secs(r.OverdueSeconds))),
			Warn: r.OverdueSeconds > 60}
	default:
		v.Retries = opsLine{Text: fmt.Sprintf("%d scheduled, the next due in %s", r.Scheduled, monitor.Words(r.NextDue.Sub(st.At)))}
	}
	switch d := st.DeadLetters; {
	case d == nil:
		v.DeadLetters = unread
	case d.Count == 0:
		v.DeadLetters = opsLine{Text: "none"}
	case d.Newest == nil: // its time could not be read
		v.DeadLetters = opsLine{Text: fmt.Sprintf("%d (linkflow dlq list)", d.Count), Warn: true}
	default:
		v.DeadLetters = opsLine{Text: fmt.Sprintf("%d, the newest at %s (linkflow dlq list)", d.Count, d.Newest.Format(time.RFC3339)), Warn: true}
	}
	if f := st.Failures; f != nil {
		v.FailuresOf = fmt.Sprintf("%d failed in the last %s", f.Total, monitor.Words(time.Duration(f.Seconds)*time.Second))
		if f.Read > 0 && uint64(f.Read) < f.Total {
			v.FailuresOf += fmt.Sprintf("; the codes of the %d newest", f.Read)
		}
	}
	if h := st.FailingHosts; h != nil {
		v.HostsKnown, v.HostsRead = true, h.Sampled
		for _, x := range h.Hosts {
			answer := x.LastError
			if x.LastStatusCode > 0 {
				answer = strings.TrimSpace(strconv.Itoa(x.LastStatusCode) + " " + x.LastError)
			}
			v.Hosts = append(v.Hosts, opsHost{Host: x.Host, Deliveries: x.Deliveries, Since: x.Since.Format(time.RFC3339),
				LastAttempt: x.LastAttemptAt.Format(time.RFC3339), Answer: answer})
		}
	}
	for _, p := range rep.Probes {
		for _, name := range slices.Sorted(maps.Keys(p.Checks)) {
			res := p.Checks[name]
			v.Ready = append(v.Ready, opsCheck{Process: p.Role + " (" + p.Addr + ")", Name: name, Result: res, OK: res == "ok"})
		}
	}
	return v
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// writeOpsPage renders v with the page's security headers: the hosted
// page's, never framed.
func (s *Server) writeOpsPage(w http.ResponseWriter, r *http.Request, status int, v *opsView) {
	v.Nonce, v.RefreshMs = newNonce(), s.cfg.OperatorRefresh.Milliseconds()
	var buf bytes.Buffer
	tmpl := opsTemplate
	if v.Fragment {
		tmpl = opsTemplate.Lookup("status")
	}
	if err := tmpl.Execute(&buf, v); err != nil {
		reqLog(r).Error("render operator page", zap.Error(err))
		http.Error(w, "Something went wrong.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+v.Nonce+"'; style-src 'nonce-"+v.Nonce+
		"'; connect-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
