package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/webhooks"
)

func (s *Server) registerWebhookRoutes() {
	s.handle("GET /v1/links/{linkId}/deliveries", s.authenticated(linkflow.ScopeLinksRead, s.listDeliveries))
	s.handle("POST /v1/links/{linkId}/deliveries/redeliver", s.authenticated(linkflow.ScopeLinksWrite, s.redeliver))
	s.handle("GET /v1/webhooks/failed", s.authenticated(linkflow.ScopeLinksRead, s.listFailedWebhooks))
	s.handle("POST /v1/webhooks/failed/replay", s.authenticated(linkflow.ScopeLinksWrite, s.replayFailedWebhooks))
	s.handle("GET /v1/events", s.authenticated(linkflow.ScopeLinksRead, s.listEvents))
	s.handle("GET /v1/events/{eventId}/deliveries", s.authenticated(linkflow.ScopeLinksRead, s.listEventDeliveries))
}

// listEventDeliveries is GET /v1/events/{eventId}/deliveries: the delivery
// and attempts of any event, a connection's included.
func (s *Server) listEventDeliveries(w http.ResponseWriter, r *http.Request) {
	out, err := s.cfg.Webhooks.EventDeliveries(r.Context(), principal(r).OrgID, r.PathValue("eventId"))
	if err != nil {
		s.writeError(w, r, notFound(err, "No delivery of this event: it has not reached a dispatcher yet, or its record expired."))
		return
	}
	writeJSON(w, r, http.StatusOK, out)
}

// listDeliveries is GET /v1/links/{linkId}/deliveries: the link's webhook
// delivery and every attempt.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	out, err := s.cfg.Webhooks.Deliveries(r.Context(), principal(r).OrgID, r.PathValue("linkId"))
	if err != nil {
		s.writeError(w, r, notFound(err, "Link not found."))
		return
	}
	writeJSON(w, r, http.StatusOK, out)
}

// redeliver is POST /v1/links/{linkId}/deliveries/redeliver: send the link's
// event again now, with the same webhook-id. 202: a dispatcher sends it; the
// attempt appears in the delivery log.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	if err := s.noBody(w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.cfg.Webhooks.Redeliver(r.Context(), principal(r).OrgID, r.PathValue("linkId"))
	if err != nil {
		s.writeError(w, r, notFound(err, "Link not found."))
		return
	}
	writeJSON(w, r, http.StatusAccepted, v)
}

// listFailedWebhooks is GET /v1/webhooks/failed: deliveries that exhausted
// their retry schedule, oldest first.
func (s *Server) listFailedWebhooks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 20, 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, next, err := s.cfg.Webhooks.Failed(r.Context(), principal(r).OrgID, q.Get("cursor"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Data       []*webhooks.DeliveryView `json:"data"`
		NextCursor *string                  `json:"nextCursor"`
	}{Data: list}
	if out.Data == nil {
		out.Data = []*webhooks.DeliveryView{}
	}
	if next != "" {
		out.NextCursor = &next
	}
	writeJSON(w, r, http.StatusOK, out)
}

// replayRequest is the optional body of POST /v1/webhooks/failed/replay.
type replayRequest struct {
	EventIDs []string `json:"eventIds"`
	Since    *int64   `json:"since"`
	Until    *int64   `json:"until"`
	Limit    *int     `json:"limit"`
}

// replayFailedWebhooks is POST /v1/webhooks/failed/replay: send failed
// deliveries again now (all of them, or those the body selects).
func (s *Server) replayFailedWebhooks(w http.ResponseWriter, r *http.Request) {
	var req replayRequest
	if r.ContentLength != 0 {
		body, err := s.readJSONBody(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		m, ok := decodeObject(body)
		if !ok {
			s.writeError(w, r, badField("", "must be an object with eventIds, since, until or limit"))
			return
		}
		if issues := unknownFields(m, "", "eventIds", "since", "until", "limit"); len(issues) > 0 {
			s.writeError(w, r, validation(issues))
			return
		}
		if err := json.Unmarshal(body, &req); err != nil {
			s.writeError(w, r, badField("", "eventIds must be an array of strings; since, until and limit integers"))
			return
		}
	}
	var issues []linkflow.Issue
	if len(req.EventIDs) > 1000 {
		issues = append(issues, linkflow.Issue{Path: "eventIds", Message: "must hold at most 1000 ids"})
	}
	for i, id := range req.EventIDs {
		if tooLong(id, 128) {
			issues = append(issues, linkflow.Issue{Path: fmt.Sprintf("eventIds[%d]", i), Message: "must be at most 128 characters"})
			break
		}
	}
	if req.Since != nil && *req.Since < 0 {
		issues = append(issues, linkflow.Issue{Path: "since", Message: "must be epoch milliseconds"})
	}
	if req.Until != nil && *req.Until < 0 {
		issues = append(issues, linkflow.Issue{Path: "until", Message: "must be epoch milliseconds"})
	}
	if req.Limit != nil && (*req.Limit < 1 || *req.Limit > 1000) {
		issues = append(issues, linkflow.Issue{Path: "limit", Message: "must be an integer from 1 to 1000"})
	}
	if len(issues) > 0 {
		s.writeError(w, r, validation(issues))
		return
	}
	f := webhooks.ReplayFilter{EventIDs: req.EventIDs}
	if req.Since != nil {
		f.Since = time.UnixMilli(*req.Since)
	}
	if req.Until != nil {
		f.Until = time.UnixMilli(*req.Until)
	}
	if req.Limit != nil {
		f.Limit = *req.Limit
	}
	res, err := s.cfg.Webhooks.ReplayFailed(r.Context(), principal(r).OrgID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusAccepted, res)
}

// listEvents is GET /v1/events?after=&limit=: the organization's events in
// order, so a receiver that was down catches up by polling.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 100, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.cfg.Webhooks.Events(r.Context(), principal(r).OrgID, q.Get("after"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, page)
}
