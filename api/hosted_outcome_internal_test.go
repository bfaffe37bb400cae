package api

import (
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

// The outcome page blames the provider only for the provider's failures: a
// link that ran out of attempts may have failed by linkflow's own store.
func TestOutcomeBlamesTheProviderOnlyForItsFailures(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: Config{Registry: operations.NewRegistry(time.Now)}}
	for code, provider := range map[linkflow.FailureCode]bool{
		linkflow.FailureProviderUnavailable: true,
		linkflow.FailureProviderTimeout:     true,
		linkflow.FailureRateLimited:         true,
		linkflow.FailureAttemptsExhausted:   false,
		linkflow.FailureInternal:            false,
	} {
		l := &linkflow.Link{IntegrationID: "tmobile", Status: linkflow.StatusFailed}
		title, detail, _ := s.outcome(l, sessionView{Status: linkflow.StatusFailed, Error: &linkflow.LinkError{Code: code}})
		if blames := strings.Contains(title+detail, "tmobile"); blames != provider {
			t.Errorf("%s: %q %q", code, title, detail)
		}
	}
}
