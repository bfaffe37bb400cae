package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
)

// createLink is POST /v1/links.
func (s *Server) createLink(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	body, err := s.readJSONBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	idemKey := r.Header.Get("Idempotency-Key")
	if len(idemKey) > 255 {
		s.writeError(w, r, linkflow.Errorf(linkflow.EBadRequest, "Idempotency-Key must be at most 255 bytes."))
		return
	}
	var reqHash string
	if idemKey != "" {
		sum := sha256.Sum256(compactJSON(body))
		reqHash = hex.EncodeToString(sum[:])
	}
	in, issues, err := s.parseCreate(r.Context(), p.OrgID, body)
	if err != nil || len(issues) > 0 {
		// A retry gets the first answer even when what validation reads
		// (the organization's settings, the integrations, the connection
		// it renews) changed, or cannot be read, since it was made. Asked
		// only here: a request that validates gets its replay from
		// CreateLink's own step, with no round trip more.
		if idemKey != "" {
			if prev, rerr := s.cfg.Store.Replay(r.Context(), p.OrgID, idemKey, reqHash); rerr != nil || prev != nil {
				s.answerCreate(w, r, prev, rerr)
				return
			}
		}
		if err == nil {
			err = validation(issues)
		}
		s.writeError(w, r, err)
		return
	}
	if email := p.UserEmail(); email != "" {
		in.OwnerUserID, in.OwnerEmail = linkflow.UserID(email), email
	}
	in.Response = s.createdResponse
	in.IdempotencyKey, in.RequestHash = idemKey, reqHash
	created, err := s.cfg.Store.CreateLink(r.Context(), *in)
	s.answerCreate(w, r, created, err)
}

// answerCreate answers a create: the link made, or the first answer again.
func (s *Server) answerCreate(w http.ResponseWriter, r *http.Request, created *linkflow.Created, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := ""
	if created.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		var first struct {
			LinkID string `json:"linkId"`
		}
		if json.Unmarshal(created.Response, &first) == nil {
			id = first.LinkID
		}
	} else {
		id = created.Link.ID
		reqLog(r).Info("link created", zap.String("link_id", created.Link.ID),
			zap.String("integration", created.Link.IntegrationID), zap.Int("operations", len(created.Link.Operations)))
	}
	if id != "" {
		w.Header().Set("Location", "/v1/links/"+id)
	}
	writeRawJSON(w, http.StatusCreated, created.Response)
}

// compactJSON drops insignificant whitespace, so a retried request that
// only re-indents its body still matches its Idempotency-Key.
func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// getLink is GET /v1/links/{linkId}.
func (s *Server) getLink(w http.ResponseWriter, r *http.Request) {
	x, err := parseExpand(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	read := s.cfg.Store.Link
	if seesClaimCode(r) {
		read = s.cfg.Store.LinkWithCode
	}
	l, err := read(r.Context(), principal(r).OrgID, r.PathValue("linkId"))
	if err != nil {
		s.writeError(w, r, notFound(err, "Link not found."))
		return
	}
	writeJSON(w, r, http.StatusOK, expandedLink{s.linkView(r, l, s.now()), x.of(s.cfg.Registry, l.IntegrationID)})
}

// linkView is a link as the caller may see it. The claim code (and the
// appClipUrl that carries it) lets whoever holds it claim the link with a
// provider account of their choosing, so the link's writes run there: only
// callers allowed to create links (links:write) see it, never links:read.
func (s *Server) linkView(r *http.Request, l *linkflow.Link, now time.Time) linkflow.LinkView {
	v := l.View(s.cfg.PublicURL, now)
	if !seesClaimCode(r) {
		v.ClaimCode, v.AppClipURL = "", ""
	}
	return v
}

// seesClaimCode says whether the caller may see claim codes: links:write
// (linkView). The store opens them only for such a caller.
func seesClaimCode(r *http.Request) bool {
	p := principal(r)
	return p != nil && p.Can(linkflow.ScopeLinksWrite)
}

// listLinks is GET /v1/links.
func (s *Server) listLinks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := linkflow.LinkFilter{
		Status:         linkflow.Status(q.Get("status")),
		IntegrationID:  q.Get("integrationId"),
		ExternalUserID: q.Get("externalUserId"),
		ClaimCodes:     seesClaimCode(r),
	}
	if f.Status != "" && !f.Status.Valid() {
		s.writeError(w, r, badParam("status", "is not a link status; the statuses are "+strings.Join(statusNames(linkflow.Statuses), ", ")))
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
	links, next, err := s.cfg.Store.ListLinks(r.Context(), principal(r).OrgID, f, q.Get("cursor"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	out := struct {
		Data       []expandedLink `json:"data"`
		NextCursor *string        `json:"nextCursor"`
	}{Data: make([]expandedLink, len(links))}
	for i, l := range links {
		out.Data[i] = expandedLink{s.linkView(r, l, now), x.of(s.cfg.Registry, l.IntegrationID)}
	}
	if next != "" {
		out.NextCursor = &next
	}
	writeJSON(w, r, http.StatusOK, out)
}

// cancelLink is POST /v1/links/{linkId}/cancel.
func (s *Server) cancelLink(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if err := s.noBody(w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.cfg.Store.CancelLink(r.Context(), p.OrgID, r.PathValue("linkId"))
	if err != nil {
		s.writeError(w, r, notFound(err, "Link not found."))
		return
	}
	status := http.StatusOK
	if res.Finished != nil {
		s.publish(r.Context(), res.Finished.Event)
	}
	if res.Requested {
		status = http.StatusAccepted
		s.cfg.Messages.Cancel(p.OrgID, res.Link.ID)
	}
	writeJSON(w, r, status, s.linkView(r, res.Link, s.now()))
}

// publish publishes messages a state change recorded in the outbox; when
// JetStream does not take them, the outbox relay will.
func (s *Server) publish(ctx context.Context, msgs ...linkflow.Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.cfg.Messages.Publish(ctx, msgs...); err != nil {
		s.log.Warn("publish; the outbox relay will retry", zap.Error(err))
	}
}

func notFound(err error, msg string) error {
	if errors.Is(err, linkflow.ErrNotFound) {
		return linkflow.Errorf(linkflow.ENotFound, "%s", msg)
	}
	return err
}

func badParam(name, msg string) error {
	e := linkflow.Errorf(linkflow.EBadRequest, "Invalid query parameter %s.", name)
	e.Issues = []linkflow.Issue{{Path: name, Message: msg}}
	return e
}

func parseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badParam("limit", "must be an integer from 1 to "+strconv.Itoa(max))
	}
	return n, nil
}

func statusNames[S ~string](ss []S) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// traceBody is the answer of GET /v1/links/{linkId}/trace.
type traceBody struct {
	LinkID string                `json:"linkId"`
	Status linkflow.Status       `json:"status"`
	Data   []linkflow.TraceEntry `json:"data"`
}

// linkTrace is GET /v1/links/{linkId}/trace: the steps of a debug link's
// session, oldest first, while the link is retained.
func (s *Server) linkTrace(w http.ResponseWriter, r *http.Request) {
	l, entries, err := s.cfg.Store.Trace(r.Context(), principal(r).OrgID, r.PathValue("linkId"))
	if err != nil {
		s.writeError(w, r, notFound(err, "Link not found."))
		return
	}
	if !l.Debug {
		s.writeError(w, r, linkflow.Errorf(linkflow.EConflict,
			`This link was created without "debug": true, so its session is not traced. Create links with "debug": true to trace them.`))
		return
	}
	writeJSON(w, r, http.StatusOK, traceBody{LinkID: l.ID, Status: l.EffectiveStatus(s.now()), Data: entries})
}
