package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/linkflow/linkflow"
)

// healthz says the process is alive.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether each of the configured checks passes (Redis answers,
// NATS is connected, the streams exist), naming the one that fails. Why it
// fails (an error naming internal addresses) is said on the metrics
// address only (Health): the API's own address faces the internet.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	var errs []error
	for _, c := range s.cfg.Ready {
		if err := c.Check(ctx); err != nil {
			why := "failing"
			if s.readyDetail {
				why = err.Error()
			}
			checks[c.Name] = why
			errs = append(errs, errors.New(c.Name+": "+why))
			continue
		}
		checks[c.Name] = "ok"
	}
	if len(errs) > 0 {
		e := linkflow.Errorf(linkflow.EServiceUnavailable, "Not ready.")
		e.Detail = errors.Join(errs...).Error()
		e.RetryAfter = 1
		s.writeError(w, r, e)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}

// Health serves GET /healthz and GET /readyz alone, with the API's answers,
// for a process that serves no API (a worker, a dispatcher) to be probed on
// its metrics address.
func Health(checks []ReadyCheck) http.Handler {
	s := &Server{cfg: Config{Ready: checks}, readyDetail: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	return mux
}
