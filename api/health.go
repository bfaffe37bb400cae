package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/workflow"
)

// healthz says the process is alive.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether Redis and NATS answer and the streams are in place.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"redis": "ok", "nats": "ok", "streams": "ok"}
	var errs []error
	if err := s.cfg.Store.Ping(ctx); err != nil {
		checks["redis"] = err.Error()
		errs = append(errs, err)
	}
	if s.cfg.NATS.Status() != nats.CONNECTED {
		checks["nats"] = s.cfg.NATS.Status().String()
		errs = append(errs, errors.New("nats not connected"))
	}
	if err := workflow.CheckStreams(ctx, s.cfg.JetStream); err != nil {
		checks["streams"] = err.Error()
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		e := linkflow.Errorf(linkflow.EServiceUnavailable, "Not ready.")
		e.Detail = errors.Join(errs...).Error()
		s.writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}
