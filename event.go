package linkflow

import (
	"encoding/json"
	"strings"
)

// Event types delivered to webhooks and listed by GET /v1/events.
const (
	EventLinkSucceeded     = "link.succeeded"
	EventLinkFailed        = "link.failed"
	EventLinkExpired       = "link.expired"
	EventLinkCanceled      = "link.canceled"
	EventConnectionError   = "connection.error"
	EventConnectionHealthy = "connection.healthy"
)

// MaxEventBody is the largest webhook body linkflow sends. A link event whose
// result would exceed it is sent without the result and with
// data.resultOmitted set, so the receiver fetches the link instead.
const MaxEventBody = 256 << 10

// Event is one thing that happened to an organization's link or connection,
// delivered as a webhook body: {"type", "timestamp", "data"}.
type Event struct {
	ID        string          `json:"-"`
	Type      string          `json:"type"`
	Timestamp int64           `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// LinkEventType is the event type for a link that ended in status s.
func LinkEventType(s Status) string { return "link." + string(s) }

// LinkEventID is the id of the one event a link's end produces. It is derived
// from the link, so publishing it twice is recognised as a duplicate, and it
// has no "." so it is a valid webhook-id.
func LinkEventID(linkID string) string {
	return "evt_" + strings.TrimPrefix(linkID, "link_")
}

// NewLinkEvent builds the event for a finished link. When the body would be
// larger than MaxEventBody, the result is left out and resultOmitted set.
func NewLinkEvent(v LinkView, timestampMs int64) (Event, []byte, error) {
	ev := Event{ID: LinkEventID(v.LinkID), Type: LinkEventType(v.Status), Timestamp: timestampMs}
	data, err := json.Marshal(v)
	if err != nil {
		return ev, nil, err
	}
	ev.Data = data
	body, err := json.Marshal(ev)
	if err != nil {
		return ev, nil, err
	}
	if len(body) > MaxEventBody && len(v.Result) > 0 {
		v.Result = nil
		v.ResultOmitted = true
		if ev.Data, err = json.Marshal(v); err != nil {
			return ev, nil, err
		}
		if body, err = json.Marshal(ev); err != nil {
			return ev, nil, err
		}
	}
	return ev, body, nil
}
