package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/connections"
	"github.com/linkflow/linkflow/operations"
)

// Scopes of the connection endpoints. Reads need connections:read, and
// include_secrets=true connections:secrets on top. Changing a connection
// (PATCH, DELETE) needs links:write, the scope that already lets a key make
// and renew connections through links, and connections:read, since the
// response shows the connection. There is no connections:write scope.
func (s *Server) registerConnectionRoutes() {
	s.handle("GET /v1/connections", s.authenticated(linkflow.ScopeConnectionsRead, s.listConnections))
	s.handle("GET /v1/connections/{connectionId}", s.authenticated(linkflow.ScopeConnectionsRead, s.getConnection))
	s.handle("PATCH /v1/connections/{connectionId}", s.authenticated(linkflow.ScopeLinksWrite, s.patchConnection))
	s.handle("DELETE /v1/connections/{connectionId}", s.authenticated(linkflow.ScopeLinksWrite, s.deleteConnection))
	s.handle("GET /v1/connections/{connectionId}/secret-reads", s.authenticated(linkflow.ScopeConnectionsRead, s.connectionSecretReads))
}

// maxDisplayName bounds a connection's displayName set through PATCH.
const maxDisplayName = 256

// getConnection is GET /v1/connections/{connectionId}
// ?include_secrets=true|false&refresh_policy=auto|force|none.
func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	q := r.URL.Query()
	withSecrets := false
	if v := q.Get("include_secrets"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.writeError(w, r, badParam("include_secrets", "must be true or false"))
			return
		}
		withSecrets = b
	}
	x, err := parseExpand(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	policy := linkflow.RefreshPolicy(q.Get("refresh_policy"))
	if policy == "" {
		policy = linkflow.RefreshAuto
	}
	if !policy.Valid() {
		s.writeError(w, r, badParam("refresh_policy", "must be auto, force or none"))
		return
	}
	// Asking for secrets without the scope is refused, not quietly answered
	// without them: a caller must never mistake a redacted answer for one
	// with secrets.
	if withSecrets && !p.Can(linkflow.ScopeConnectionsSecrets) {
		s.writeError(w, r, linkflow.Errorf(linkflow.EForbidden, "include_secrets=true needs the %s scope.", linkflow.ScopeConnectionsSecrets))
		return
	}
	id := r.PathValue("connectionId")
	log := reqLog(r).WithLazy(zap.String("connection_id", id))
	read, err := s.cfg.Connections.Read(r.Context(), p.OrgID, id, policy, func() { log.Debug("waiting for a refresh in flight") })
	if err != nil {
		s.connectionFailed(w, r, err)
		return
	}
	if read.Event != nil {
		s.publish(r.Context(), *read.Event)
	}
	c := read.Conn
	switch {
	case read.RefreshErr != nil:
		log.Warn("connection refresh failed", zap.String("code", string(operations.AsError(read.RefreshErr).Code)))
	case read.Refreshed:
		log.Info("connection refreshed")
	}
	if withSecrets {
		if c.Status == linkflow.ConnRevoked {
			s.writeError(w, r, linkflow.Errorf(linkflow.EConflict, "The connection was revoked; its credentials were deleted."))
			return
		}
		if c.Unreadable && c.UnknownKey != "" {
			s.connectionFailed(w, r, connections.UnknownKeyError(c))
			return
		}
		if c.Unreadable {
			log.Error("connection credentials cannot be opened: damaged")
			s.writeError(w, r, linkflow.Errorf(linkflow.EInternal, "The connection's credentials are damaged and cannot be "+
				"opened. A new link with this connectionId renews them."))
			return
		}
		if c.Credentials != nil {
			err := s.cfg.Store.RecordSecretRead(r.Context(), p.OrgID, c.ID, linkflow.SecretRead{
				At: s.now(), Subject: p.Subject, KeyID: p.KeyID, Address: addrString(s, r), RequestID: requestID(r),
			})
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			log.Info("connection secrets read", zap.String("subject", p.Subject))
		}
	}
	writeJSON(w, r, http.StatusOK, expandedConnection{c.View(withSecrets), x.of(s.cfg.Registry, c.IntegrationID)})
}

func addrString(s *Server, r *http.Request) string {
	if a := s.clientAddr(r); a.IsValid() {
		return a.String()
	}
	return ""
}

// connectionFailed answers what the connections service refused; a key this
// process is not given is logged too, for the operator.
func (s *Server) connectionFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, linkflow.ErrUnknownKey) {
		logUnknownKey(r, err)
	}
	s.writeError(w, r, connectionError(err))
}

// connectionError words what the connections service answered.
func connectionError(err error) error {
	switch {
	case errors.Is(err, connections.ErrBusy):
		e := linkflow.Errorf(linkflow.EServiceUnavailable, "The connection is busy with another refresh or change; try again.")
		e.RetryAfter = 1
		return e
	case errors.Is(err, connections.ErrNoRefresh):
		return linkflow.Errorf(linkflow.EUnprocessable, "This integration cannot refresh credentials.")
	case errors.Is(err, linkflow.ErrUnknownKey):
		// During a key roll, a process given the key answers: retry.
		e := linkflow.Errorf(linkflow.EServiceUnavailable, "The connection's credentials are sealed with an encryption key "+
			"this linkflow process is not given: try again (a key roll may be under way). If the key was retired, an "+
			"operator gives it back, or a new link with this connectionId renews the credentials.")
		e.RetryAfter = retryUnknownKey
		return e
	case errors.Is(err, connections.ErrCannotRefresh):
		msg := err.Error() // "the connection cannot be refreshed: <why>"
		return linkflow.Errorf(linkflow.EConflict, "%s%s.", strings.ToUpper(msg[:1]), msg[1:])
	}
	return notFound(err, "Connection not found.")
}

// listConnections is GET /v1/connections. It never shows secrets and never
// refreshes: include_secrets and refresh_policy are refused here rather
// than ignored.
func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, name := range []string{"include_secrets", "refresh_policy"} {
		if q.Has(name) {
			s.writeError(w, r, badParam(name, "is only accepted by GET /v1/connections/{connectionId}"))
			return
		}
	}
	f := linkflow.ConnectionFilter{
		ExternalUserID: q.Get("externalUserId"),
		IntegrationID:  q.Get("integrationId"),
		Status:         linkflow.ConnStatus(q.Get("status")),
	}
	switch f.Status {
	case "", linkflow.ConnHealthy, linkflow.ConnError, linkflow.ConnDisconnected, linkflow.ConnRevoked:
	default:
		s.writeError(w, r, badParam("status", "must be healthy, error, disconnected or revoked"))
		return
	}
	limit, err := parseLimit(q.Get("limit"), 20, 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	x, err := parseExpand(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	conns, next, err := s.cfg.Store.ListConnections(r.Context(), principal(r).OrgID, f, q.Get("cursor"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Data       []expandedConnection `json:"data"`
		NextCursor *string              `json:"nextCursor"`
	}{Data: make([]expandedConnection, len(conns))}
	for i, c := range conns {
		out.Data[i] = expandedConnection{c.View(false), x.of(s.cfg.Registry, c.IntegrationID)}
	}
	if next != "" {
		out.NextCursor = &next
	}
	writeJSON(w, r, http.StatusOK, out)
}

// patchConnection is PATCH /v1/connections/{connectionId}: metadata
// (replaced as a whole; null clears it), displayName, disabled.
func (s *Server) patchConnection(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if !p.Can(linkflow.ScopeConnectionsRead) {
		s.writeError(w, r, linkflow.Errorf(linkflow.EForbidden, "This key or token lacks the %s scope.", linkflow.ScopeConnectionsRead))
		return
	}
	body, err := s.readJSONBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	patch, issues := parseConnectionPatch(body)
	if len(issues) > 0 {
		s.writeError(w, r, validation(issues))
		return
	}
	c, err := s.cfg.Store.UpdateConnection(r.Context(), p.OrgID, r.PathValue("connectionId"), patch)
	if errors.Is(err, linkflow.ErrConnectionRevoked) {
		err = linkflow.Errorf(linkflow.EConflict, "The connection was revoked; it cannot be changed.")
	}
	if err != nil {
		s.writeError(w, r, notFound(err, "Connection not found."))
		return
	}
	writeJSON(w, r, http.StatusOK, c.View(false))
}

var patchFields = []string{"metadata", "displayName", "disabled"}

func parseConnectionPatch(body []byte) (linkflow.ConnectionPatch, []linkflow.Issue) {
	var p linkflow.ConnectionPatch
	var issues []linkflow.Issue
	add := func(path, msg string) { issues = append(issues, linkflow.Issue{Path: path, Message: msg}) }
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return p, []linkflow.Issue{{Path: "", Message: "must be a JSON object"}}
	}
	issues = append(issues, unknownFields(m, "", patchFields...)...)
	if raw, ok := m["metadata"]; ok {
		var obj map[string]json.RawMessage
		switch {
		case bytes.Equal(bytes.TrimSpace(raw), []byte("null")):
			p.Metadata = json.RawMessage(`{}`)
		case json.Unmarshal(raw, &obj) != nil || obj == nil:
			add("metadata", "must be a JSON object or null")
		default:
			var buf bytes.Buffer
			_ = json.Compact(&buf, raw)
			if buf.Len() > linkflow.MaxConnectionMetadata {
				add("metadata", "must be at most "+strconv.Itoa(linkflow.MaxConnectionMetadata)+" bytes of JSON")
			} else {
				p.Metadata = buf.Bytes()
			}
		}
	}
	if raw, ok := m["displayName"]; ok {
		var name *string
		if err := json.Unmarshal(raw, &name); err != nil {
			add("displayName", "must be a string or null")
		} else {
			v := ""
			if name != nil {
				v = *name
			}
			if utf8.RuneCountInString(v) > maxDisplayName {
				add("displayName", "must be at most "+strconv.Itoa(maxDisplayName)+" characters")
			}
			p.DisplayName = &v
		}
	}
	if raw, ok := m["disabled"]; ok {
		var d bool
		if err := json.Unmarshal(raw, &d); err != nil {
			add("disabled", "must be true or false")
		} else {
			p.Disabled = &d
		}
	}
	return p, issues
}

// deleteConnection is DELETE /v1/connections/{connectionId}: revoke at the
// provider, delete the secrets, keep a tombstone. It answers 200 with the
// tombstone, whose revokedAtProvider says whether the provider confirmed.
func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if !p.Can(linkflow.ScopeConnectionsRead) {
		s.writeError(w, r, linkflow.Errorf(linkflow.EForbidden, "This key or token lacks the %s scope.", linkflow.ScopeConnectionsRead))
		return
	}
	if err := s.noBody(w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("connectionId")
	rev, err := s.cfg.Connections.Delete(r.Context(), p.OrgID, id)
	if err != nil {
		s.connectionFailed(w, r, err)
		return
	}
	if !rev.Already {
		fields := []zap.Field{zap.String("connection_id", id), zap.Bool("at_provider", rev.AtProvider)}
		if rev.ProviderErr != nil {
			fields = append(fields, zap.String("provider_code", string(operations.AsError(rev.ProviderErr).Code)))
		}
		reqLog(r).Info("connection revoked", fields...)
	}
	writeJSON(w, r, http.StatusOK, rev.Conn.View(false))
}

// secretReadView is one entry of GET /v1/connections/{id}/secret-reads.
type secretReadView struct {
	At        int64  `json:"at"`
	Subject   string `json:"subject"`
	KeyID     string `json:"keyId,omitempty"`
	Address   string `json:"address,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// connectionSecretReads is GET /v1/connections/{connectionId}/secret-reads:
// who read the connection's secrets, newest first.
func (s *Server) connectionSecretReads(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r.URL.Query().Get("limit"), 100, linkflow.SecretReadsKept)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("connectionId")
	reads, err := s.cfg.Store.SecretReads(r.Context(), principal(r).OrgID, id, limit)
	if err != nil {
		s.writeError(w, r, notFound(err, "Connection not found."))
		return
	}
	out := struct {
		ConnectionID string           `json:"connectionId"`
		Data         []secretReadView `json:"data"`
	}{ConnectionID: id, Data: make([]secretReadView, len(reads))}
	for i, rd := range reads {
		out.Data[i] = secretReadView{At: rd.At.UnixMilli(), Subject: rd.Subject, KeyID: rd.KeyID, Address: rd.Address, RequestID: rd.RequestID}
	}
	writeJSON(w, r, http.StatusOK, out)
}
