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
