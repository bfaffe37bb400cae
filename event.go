package linkflow

import (
	"encoding/json"
	"strconv"
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
//
// The result, which can be large, is spliced in as it is rather than run
// through encoding/json again (which would re-scan and compact it, the
// worker's largest cost). It must be valid JSON, which the worker checks
// once when it builds it.
func NewLinkEvent(v LinkView, timestampMs int64) (Event, []byte, error) {
	ev := Event{ID: LinkEventID(v.LinkID), Type: LinkEventType(v.Status), Timestamp: timestampMs}
	result := v.Result
	v.Result = nil
	head, err := json.Marshal(v)
	if err != nil {
		return ev, nil, err
	}
	const envelope = len(`{"type":"","timestamp":,"data":}`) + 32
	if len(result) > 0 && envelope+len(ev.Type)+len(head)+len(`,"result":`)+len(result) > MaxEventBody {
		v.ResultOmitted = true
		if head, err = json.Marshal(v); err != nil {
			return ev, nil, err
		}
		result = nil
	}
	// The body is built in one buffer; Data is its "data" part.
	b := make([]byte, 0, envelope+len(ev.Type)+len(head)+len(`,"result":`)+len(result))
	b = ev.appendHead(b)
	start := len(b)
	if len(result) > 0 {
		b = append(b, head[:len(head)-1]...)
		b = append(b, `,"result":`...)
		b = append(b, result...)
		b = append(b, '}')
	} else {
		b = append(b, head...)
	}
	ev.Data = b[start:len(b):len(b)]
	return ev, append(b, '}'), nil
}

// AppendJSON appends the event's webhook body, {"type", "timestamp",
// "data"}, with Data as it is.
func (e Event) AppendJSON(b []byte) []byte {
	b = e.appendHead(b)
	b = append(b, e.Data...)
	return append(b, '}')
}

// appendHead appends the body up to its "data" value.
func (e Event) appendHead(b []byte) []byte {
	typ, _ := json.Marshal(e.Type)
	b = append(b, `{"type":`...)
	b = append(b, typ...)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, e.Timestamp, 10)
	return append(b, `,"data":`...)
}

// Message is a message for NATS JetStream: its subject, the id JetStream
// recognises a repeat by, and a payload that carries ids only (package
// outbox builds them). Outbox names the outbox entry that keeps the message
// in Redis until JetStream confirms it: the store's business, "" for a
// message that was never recorded.
type Message struct {
	Subject string
	ID      string
	Data    []byte
	Outbox  string
	// Seq is the stream sequence JetStream stored the message at, set by
	// the publisher once JetStream confirmed it.
	Seq uint64
	// Relayed marks a message the relay publishes again (it was recorded a
	// while ago and not confirmed): JetStream may hold it twice.
	Relayed bool
}
