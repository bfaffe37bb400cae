package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow/monitor"
)

// A status whose Redis could not be read says so where its numbers would
// be, and why at the end; what was read is shown.
func TestWriteStatusWithUnreadableParts(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	due := at.Add(-90 * time.Second)
	st := &monitor.Status{Backlog: monitor.Backlog{At: at,
		Consumers:   []monitor.Consumer{{Name: "worker-tmobile", Stream: "LINKFLOW_LINKS", Pending: 7, AckPending: 3}},
		DeadLetters: &monitor.DeadLetters{}, Retries: &monitor.Retries{Scheduled: 4, NextDue: &due, OverdueSeconds: 90},
		Errors: []string{"redis: dial tcp 127.0.0.1:6379: connect: connection refused"}},
		Warnings: []string{"Redis at 10.0.0.1:6379 evicts keys"}}
	var b strings.Builder
	writeStatus(&b, monitor.Report{Status: st, Probes: []monitor.Probe{{Role: "worker", Addr: "127.0.0.1:9091", Error: "connection refused"}}})
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"WARNINGS Redis at 10.0.0.1:6379 evicts keys LINKS (could not be read: see errors)", "worker-tmobile LINKFLOW_LINKS 7 3 0 0",
		"OUTBOX (could not be read: see errors)", "WEBHOOK RETRIES 4 scheduled, the earliest overdue by 1m30s",
		"DEAD LETTERS none", "worker 127.0.0.1:9091 NO connection refused",
		"ERRORS redis: dial tcp 127.0.0.1:6379: connect: connection refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
}

// Dead letters whose newest time could not be read are counted all the
// same.
func TestWriteStatusDeadLettersWithoutATime(t *testing.T) {
	t.Parallel()
	st := &monitor.Status{Backlog: monitor.Backlog{At: time.Now(), DeadLetters: &monitor.DeadLetters{Count: 2}}}
	var b strings.Builder
	writeStatus(&b, monitor.Report{Status: st})
	if out := strings.Join(strings.Fields(b.String()), " "); !strings.Contains(out, "DEAD LETTERS 2 (linkflow dlq list)") {
		t.Fatalf("no dead letters counted in:\n%s", b.String())
	}
}
