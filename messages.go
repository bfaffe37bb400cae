package linkflow

// JetStream streams and subjects, and the messages on them. Messages carry
// ids only (link, organization, attempt, event): never a secret, never an
// operation's arguments. The state they point to lives in Redis.
const (
	// StreamLinks holds link claimed messages, one subject per integration
	// (SubjectClaimed + integration id), consumed by workers.
	StreamLinks    = "LINKFLOW_LINKS"
	SubjectClaimed = "linkflow.links.claimed."

	// StreamEvents holds completion events (SubjectEvents + event type),
	// consumed by the webhook dispatcher.
	StreamEvents  = "LINKFLOW_EVENTS"
	SubjectEvents = "linkflow.events."

	// StreamDLQ keeps messages that could not be processed, for operators.
	StreamDLQ  = "LINKFLOW_DLQ"
	SubjectDLQ = "linkflow.dlq."

	// Core NATS subjects (not persisted) that wake a worker at once; the
	// worker's heartbeat reads the same facts from Redis in case one is lost.
	SubjectCancel = "linkflow.control.cancel"
	SubjectInput  = "linkflow.control.input"
)

// ClaimedMessage says a link was claimed and must be run.
type ClaimedMessage struct {
	LinkID  string `json:"linkId"`
	OrgID   string `json:"orgId"`
	Attempt int    `json:"attempt"`
}

// EventMessage says an event was recorded in the organization's event log.
type EventMessage struct {
	OrgID    string `json:"orgId"`
	EventID  string `json:"eventId"`
	StreamID string `json:"streamId"`
}

// ControlMessage wakes the worker running a link.
type ControlMessage struct {
	LinkID string `json:"linkId"`
	OrgID  string `json:"orgId"`
}
