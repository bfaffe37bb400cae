package outbox

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/linkflow/linkflow"
)

// Claimed says a link was claimed and must be run.
type Claimed struct {
	LinkID  string `json:"linkId"`
	OrgID   string `json:"orgId"`
	Attempt int    `json:"attempt"`
}

// Event says an event happened and must be delivered.
type Event struct {
	OrgID   string `json:"orgId"`
	EventID string `json:"eventId"`
}

// Control wakes the worker running a link.
type Control struct {
	LinkID string `json:"linkId"`
	OrgID  string `json:"orgId"`
}

// ClaimedID is the message id of a link's claimed message: one per link, so
// a repeated publish is recognised as a duplicate.
func ClaimedID(linkID string) string { return "claim-" + linkID }

// ClaimedMessage is the message that a link was claimed, for the workers of
// its integration.
func ClaimedMessage(org, linkID, integration string) linkflow.Message {
	data, _ := json.Marshal(Claimed{LinkID: linkID, OrgID: org, Attempt: 1})
	return linkflow.Message{Subject: SubjectClaimed + integration, ID: ClaimedID(linkID), Data: data}
}

// EventMessage is the message that event eventID of type eventType happened
// to an organization, for the dispatchers. Its id is the event's.
func EventMessage(org, eventID, eventType string) linkflow.Message {
	data, _ := json.Marshal(Event{OrgID: org, EventID: eventID})
	return linkflow.Message{Subject: EventSubject(org, eventType), ID: eventID, Data: data}
}

// ErrUnparseable is a message that is not one of linkflow's.
var ErrUnparseable = errors.New("unparseable message")

// ParseClaimed reads a claimed message.
func ParseClaimed(data []byte) (Claimed, error) {
	var m Claimed
	if json.Unmarshal(data, &m) != nil || m.LinkID == "" || m.OrgID == "" {
		return m, ErrUnparseable
	}
	return m, nil
}

// ParseEvent reads an event message.
func ParseEvent(data []byte) (Event, error) {
	var m Event
	if json.Unmarshal(data, &m) != nil || m.OrgID == "" || m.EventID == "" {
		return m, ErrUnparseable
	}
	return m, nil
}

// NewEventID returns a new event id ("evt_..."): time-ordered and free of
// ".", so it is a valid webhook-id and JetStream message id.
func NewEventID() string {
	u, err := uuid.NewV7()
	if err != nil {
		u = uuid.New()
	}
	return "evt_" + strings.ReplaceAll(u.String(), "-", "")
}

// NewEventIDFor returns a new event id about the record id names (a
// connection): it ends as id does, so the store keeps the event's record
// in the same shard as the record, and commits both in one step.
func NewEventIDFor(id string) string {
	e := NewEventID()
	if len(id) < 2 {
		return e
	}
	return e[:len(e)-2] + id[len(id)-2:]
}
