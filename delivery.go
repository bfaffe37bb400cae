package linkflow

import (
	"errors"
	"time"
)

// Delivery statuses.
const (
	// DeliveryPending: attempts are scheduled.
	DeliveryPending = "pending"
	// DeliverySucceeded: a 2xx was received.
	DeliverySucceeded = "succeeded"
	// DeliveryFailed: the schedule was exhausted without a 2xx.
	DeliveryFailed = "failed"
	// DeliveryGone: the receiver answered 410 Gone; no more retries.
	DeliveryGone = "gone"
	// DeliveryNoTarget: the link had no webhook URL; nothing is sent.
	DeliveryNoTarget = "no_target"
)

// Attempt triggers: why an attempt was made.
const (
	TriggerInitial = "initial"
	TriggerRetry   = "retry"
	TriggerManual  = "manual"
	TriggerReplay  = "replay"
)

// ErrNoTarget is returned when a delivery is asked to send an event that has
// no webhook URL.
var ErrNoTarget = errors.New("the event has no webhook URL")

// ErrNotFailed is returned when a replay of failed deliveries meets one that
// is no longer failed.
var ErrNotFailed = errors.New("the delivery is not failed")

// Delivery is the webhook delivery state of one event.
type Delivery struct {
	OrgID     string
	EventID   string
	EventType string
	LinkID    string
	URL       string
	Status    string
	// Attempts counts attempts sent, whatever their trigger.
	Attempts int
	// Step counts scheduled attempts (initial and retries): the position in
	// the retry schedule.
	Step int
	// Version changes with every decision; a decision made from an older
	// version is dropped.
	Version int64
	// Trigger is the trigger of the next attempt.
	Trigger string
	// Once is set when the next attempt is a single extra attempt of a
	// finished delivery (manual or replay); OnceFrom is the status it returns
	// to when that attempt fails.
	Once     bool
	OnceFrom string

	NextAt         time.Time
	CreatedAt      time.Time
	LastAttemptAt  time.Time
	LastStatusCode int
	LastError      string
	DeliveredAt    time.Time
	FailedAt       time.Time
}

// Terminal reports whether no attempt is pending.
func (d *Delivery) Terminal() bool { return d.Status != DeliveryPending }

// DeliveryRef names a delivery in the retry schedule.
type DeliveryRef struct {
	OrgID   string
	EventID string
}

// AttemptRecord is one attempt and the decision it led to.
type AttemptRecord struct {
	OrgID   string
	EventID string
	LinkID  string
	// Version is the state version the attempt was made from: the decision
	// applies only if it is still current.
	Version int64
	At      time.Time
	// Entry is the attempt as JSON; the store numbers it (it must begin with
	// `{"attempt":0,`).
	Entry []byte
	// StatusCode is 0 when no response was received.
	StatusCode int
	Error      string
	// Delivered is set when this attempt got a 2xx.
	Delivered bool
	// Status, Step, NextAt and Trigger are the state after the attempt.
	Status  string
	Step    int
	NextAt  time.Time
	Trigger string
	// LogCap bounds the link's attempt log. Default 100.
	LogCap int
	// FailedRetention is how long failed deliveries stay listed.
	FailedRetention time.Duration
	// Claim, when set, is when the caller's claim on the delivery's retry
	// schedule entry expires (the score it claimed the entry at). The entry
	// is then settled in the same round trip: moved to NextAt while the
	// delivery stays pending, removed otherwise, if the claim still holds at
	// Now (see SettleDeliveryRetry).
	Claim time.Time
	Now   time.Time
}

// AttemptEntryPrefix is how an attempt's JSON must begin; the store replaces
// the 0 with the attempt's number.
const AttemptEntryPrefix = `{"attempt":0,`

// EventAccept asks for an event of an organization's log to be accepted for
// webhook delivery.
type EventAccept struct {
	OrgID   string
	EventID string
	// Now is when the event is accepted; FirstAt when its first attempt is
	// due.
	Now     time.Time
	FirstAt time.Time
	// ClaimUntil is how long an attempt due now is claimed for the caller:
	// hidden from ClaimDueDeliveries until then. It must be after Now.
	ClaimUntil time.Time
}

// Accepted is what accepting an event found or made.
type Accepted struct {
	Delivery *Delivery
	// Event is the event, while the delivery is pending.
	Event *StoredEvent
	// Created is set when this call created the delivery state.
	Created bool
	// Owned is set when the delivery's attempt is due and this call claimed
	// it until ClaimUntil: the caller attempts it, or hands it back with
	// SettleDeliveryRetry. Otherwise the delivery is finished, or in the
	// retry schedule under whoever put it there.
	Owned bool
}

// StoredEvent is an event as the organization's event log keeps it: the
// webhook body exactly as it will be signed and sent.
type StoredEvent struct {
	ID string
	// Seq is the events stream's sequence JetStream first stored the
	// event's message at (0 until the publisher recorded it): a copy at
	// another sequence is a duplicate.
	Seq        uint64
	Type       string
	LinkID     string
	WebhookURL string
	Body       []byte
}
