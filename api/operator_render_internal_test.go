package api

import (
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow/monitor"
)

// Dead letters whose newest time could not be read are counted all the
// same on the operator's page.
func TestOpsViewDeadLettersWithoutATime(t *testing.T) {
	t.Parallel()
	v := newOpsView(&monitor.Report{Status: &monitor.Status{Backlog: monitor.Backlog{At: time.Now(), DeadLetters: &monitor.DeadLetters{Count: 2}}}})
	if !strings.HasPrefix(v.DeadLetters.Text, "2 (") || !v.DeadLetters.Warn {
		t.Fatalf("dead letters: %+v", v.DeadLetters)
	}
}

// A warning of the status (a Redis that evicts keys) is shown at the top of
// the operator's page, escaped.
func TestOpsPageShowsWarnings(t *testing.T) {
	t.Parallel()
	warn := "Redis at 10.0.0.1:6379 evicts keys (maxmemory-policy allkeys-lru): set <noeviction>"
	v := newOpsView(&monitor.Report{Status: &monitor.Status{Backlog: monitor.Backlog{At: time.Now()}, Warnings: []string{warn}}})
	var b strings.Builder
	if err := opsTemplate.Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	want := `<section id="warnings">`
	if i, j := strings.Index(page, want), strings.Index(page, `<section id="links">`); i < 0 || j < i ||
		!strings.Contains(page[i:j], "set &lt;noeviction&gt;") {
		t.Fatalf("no warning above the links in:\n%s", page)
	}
}
