package outbox

// JetStream streams and subjects.
const (
	// StreamLinks holds the claimed messages of links, one subject per
	// integration (SubjectClaimed + integration id), consumed by workers.
	StreamLinks    = "LINKFLOW_LINKS"
	SubjectClaimed = "linkflow.links.claimed."

	// StreamEvents holds every event (EventSubject: SubjectEvents +
	// organization + "." + event type) for the event retention: consumed by
	// webhook dispatchers, and read by GET /v1/events (Feed).
	StreamEvents  = "LINKFLOW_EVENTS"
	SubjectEvents = "linkflow.events."

	// StreamDLQ keeps messages that could not be processed, for operators,
	// on the subjects SubjectsDLQ matches.
	StreamDLQ   = "LINKFLOW_DLQ"
	SubjectsDLQ = "linkflow.dlq.>"
	// SubjectDeadLetterLinks is where dead-lettered claimed messages go.
	SubjectDeadLetterLinks = "linkflow.dlq.links"

	// StreamAdvisories keeps JetStream's advisories that a claimed message
	// was delivered MaxDeliver times (SubjectMaxDeliveries) until a worker
	// has handled each: an advisory is a core NATS message, lost when no
	// worker listens at that moment (all of them restarting, say, after a
	// message that makes the worker crash). AdvisoryConsumer is the workers'
	// shared durable consumer of it.
	StreamAdvisories     = "LINKFLOW_ADVISORIES"
	SubjectMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamLinks + ".*"
	AdvisoryConsumer     = "deadletter"
)

// Core NATS subjects (not persisted) that wake a process at once; each
// notice has a slower path through Redis in case it is lost.
const (
	// SubjectCancel and SubjectInput wake the worker running a link: a
	// cancel request, a challenge's answer (ControlMessage).
	SubjectCancel = "linkflow.control.cancel"
	SubjectInput  = "linkflow.control.input"
	// SubjectWake tells dispatchers that a redelivery is due now, so they
	// need not wait for their next poll.
	SubjectWake = "linkflow.control.webhooks"
)

// Dead-letter message headers.
const (
	HeaderReason          = "Linkflow-Reason"
	HeaderLinkID          = "Linkflow-Link-Id"
	HeaderOriginalSubject = "Linkflow-Original-Subject"
	HeaderDeliveries      = "Linkflow-Deliveries"
)

// WorkerConsumer is the durable consumer of an integration's claimed
// messages, shared by every worker process.
func WorkerConsumer(integration string) string { return "worker-" + integration }

// DispatcherConsumer is the durable consumer of events every dispatcher
// process shares.
const DispatcherConsumer = "dispatcher"

// EventSubject is the subject of an organization's events of one type.
func EventSubject(org, eventType string) string { return SubjectEvents + org + "." + eventType }

// EventsOf is the subject filter of every event of an organization.
func EventsOf(org string) string { return SubjectEvents + org + ".>" }

// EventsOfType is the subject filter of every organization's events of one
// type.
func EventsOfType(eventType string) string { return SubjectEvents + "*." + eventType }
