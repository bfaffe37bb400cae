package api

import (
	"net/http"

	"github.com/linkflow/linkflow"
)

// providers is GET /v1/providers: the catalog, from the same registry that
// validates links and that workers execute.
func (s *Server) providers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, map[string]any{"data": s.cfg.Registry.Integrations()})
}

// sandboxAccount is GET /v1/sandbox/accounts/{integrationId}/{username}
// (dev only): a sandbox account of the caller's organization, its state and
// write log.
func (s *Server) sandboxAccount(w http.ResponseWriter, r *http.Request) {
	integ := r.PathValue("integrationId")
	if _, ok := s.cfg.Registry.Integration(integ); !ok {
		s.writeError(w, r, linkflow.Errorf(linkflow.ENotFound, "No such sandbox integration."))
		return
	}
	acct, err := s.cfg.SandboxAccount(r.Context(), principal(r).OrgID, integ, r.PathValue("username"))
	if err != nil {
		s.writeError(w, r, notFound(err, "No such sandbox account."))
		return
	}
	writeJSON(w, r, http.StatusOK, acct)
}
