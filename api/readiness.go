package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Readiness is what /readyz says while a process starts: for each check,
// why it is not ready yet (what the process waits for); once the process is
// connected, its own checks of the same names.
type Readiness struct {
	mu     sync.Mutex
	names  []string
	why    map[string]error
	checks []ReadyCheck
}

var errNotYet = errors.New("not checked yet")

// NewReadiness returns the readiness of checks named names, none checked
// yet.
func NewReadiness(names ...string) *Readiness {
	s := &Readiness{names: names, why: map[string]error{}}
	for _, name := range names {
		s.why[name] = errNotYet
	}
	return s
}

// Waiting records why check is not ready; a nil why: it is.
func (s *Readiness) Waiting(check string, why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.why[check] = why
}

// Ready hands /readyz over to the process's own checks.
func (s *Readiness) Ready(checks []ReadyCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = checks
}

// Checks are /readyz's checks: what the process waits for until it is
// ready, then its own checks of the same names.
func (s *Readiness) Checks() []ReadyCheck {
	out := make([]ReadyCheck, len(s.names))
	for i, name := range s.names {
		out[i] = ReadyCheck{Name: name, Check: func(ctx context.Context) error {
			s.mu.Lock()
			checks, why := s.checks, s.why[name]
			s.mu.Unlock()
			for _, c := range checks {
				if c.Name == name {
					return c.Check(ctx)
				}
			}
			if checks != nil || why == nil {
				return nil
			}
			if why == errNotYet {
				return why
			}
			return fmt.Errorf("waiting: %w", why)
		}}
	}
	return out
}
