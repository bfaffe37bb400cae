package webhooks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

// ServiceStore is what the API's webhook queries need from the store.
type ServiceStore interface {
	Link(ctx context.Context, org, id string) (*linkflow.Link, error)
	LoadDelivery(ctx context.Context, org, eventID string) (*linkflow.Delivery, *linkflow.StoredEvent, error)
	DeliveryAttempts(ctx context.Context, org, linkID string) ([]json.RawMessage, error)
	EventAttempts(ctx context.Context, org, eventID string) ([]json.RawMessage, error)
	ResendDelivery(ctx context.Context, org, eventID, trigger string, onlyFailed bool, now time.Time, failedRetention time.Duration) (*linkflow.Delivery, error)
	FailedDeliveries(ctx context.Context, org, cursor string, limit int, since, until time.Time) ([]*linkflow.Delivery, string, error)
	EventRecords(ctx context.Context, ids []string) (map[string]linkflow.StoredEvent, error)
}

// Feed is where an organization's events are in order (outbox.Feed reads
// the events stream).
type Feed interface {
	Read(ctx context.Context, org string, after uint64, limit int) ([]outbox.FeedEntry, bool, error)
}

// ServiceConfig configures a Service. Zero fields take the documented
// defaults.
type ServiceConfig struct {
	// Store is required.
	Store ServiceStore
	// Feed lists events in order for GET /v1/events; without it, Events
	// answers with an error.
	Feed Feed
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Notifier, when set, wakes dispatchers at once after a redelivery or a
	// replay (outbox.Notifier is one); without it they notice within their
	// PollInterval.
	Notifier interface{ Wake() }
	// FailedRetention is how long failed deliveries stay listed; keep it
	// equal to the dispatcher's. Default 14 days.
	FailedRetention time.Duration
	// MaxPageBytes bounds the bodies of one page of Events: a page ends
	// before the event that would pass it (it holds one event at least), so
	// a thousand events of large results are not read and answered at once.
	// Default 4 MiB.
	MaxPageBytes int
}

// Service answers the API's webhook questions: a link's deliveries, failed
// deliveries, the event log; and asks for redeliveries. It sends nothing
// itself: dispatchers do, with their SSRF guard and per-host limits.
type Service struct {
	cfg ServiceConfig
	log *zap.Logger
}

// NewService returns a Service with cfg's defaults filled in. It panics
// without a Store (a wiring mistake).
func NewService(cfg ServiceConfig) *Service {
	if cfg.Store == nil {
		panic("webhooks: ServiceConfig.Store is required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.FailedRetention = cmp.Or(cfg.FailedRetention, 14*24*time.Hour)
	cfg.MaxPageBytes = cmp.Or(cfg.MaxPageBytes, 4<<20)
	return &Service{cfg: cfg, log: cfg.Logger.Named("webhooks")}
}

// DeliveryView is an event's delivery state as the API shows it.
type DeliveryView struct {
	EventID   string `json:"eventId"`
	WebhookID string `json:"webhookId"`
	Type      string `json:"type"`
	LinkID    string `json:"linkId,omitempty"`
	URL       string `json:"url,omitempty"`
	// Status is pending, succeeded, failed (schedule exhausted), gone (the
	// receiver answered 410) or no_target (no webhook URL).
	Status         string `json:"status"`
	Attempts       int    `json:"attempts"`
	NextAttemptAt  *int64 `json:"nextAttemptAt"`
	CreatedAt      *int64 `json:"createdAt"`
	LastAttemptAt  *int64 `json:"lastAttemptAt"`
	LastStatusCode *int   `json:"lastStatusCode"`
	LastError      string `json:"lastError,omitempty"`
	DeliveredAt    *int64 `json:"deliveredAt"`
	FailedAt       *int64 `json:"failedAt"`
}

func viewOf(d *linkflow.Delivery) *DeliveryView {
	v := &DeliveryView{
		EventID: d.EventID, WebhookID: d.EventID, Type: d.EventType, LinkID: d.LinkID, URL: d.URL,
		Status: d.Status, Attempts: d.Attempts, CreatedAt: linkflow.Millis(d.CreatedAt),
		LastAttemptAt: linkflow.Millis(d.LastAttemptAt), LastError: d.LastError,
		DeliveredAt: linkflow.Millis(d.DeliveredAt), FailedAt: linkflow.Millis(d.FailedAt),
	}
	if d.Status == linkflow.DeliveryPending {
		v.NextAttemptAt = linkflow.Millis(d.NextAt)
	}
	if d.LastStatusCode > 0 {
		code := d.LastStatusCode
		v.LastStatusCode = &code
	}
	return v
}

// LinkDeliveries is a link's webhook delivery and its attempts.
type LinkDeliveries struct {
	LinkID string `json:"linkId"`
	// Delivery is null until the link has ended and its event reached a
	// dispatcher.
	Delivery *DeliveryView `json:"delivery"`
	// Data lists the attempts, oldest first.
	Data []Attempt `json:"data"`
}

// Deliveries returns a link's delivery and attempts; linkflow.ErrNotFound when
// the organization has no such link.
func (s *Service) Deliveries(ctx context.Context, org, linkID string) (*LinkDeliveries, error) {
	if _, err := s.cfg.Store.Link(ctx, org, linkID); err != nil {
		return nil, err
	}
	out := &LinkDeliveries{LinkID: linkID, Data: []Attempt{}}
	del, _, err := s.cfg.Store.LoadDelivery(ctx, org, linkflow.LinkEventID(linkID))
	switch {
	case err == nil:
		out.Delivery = viewOf(del)
	case !errors.Is(err, linkflow.ErrNotFound):
		return nil, err
	}
	raw, err := s.cfg.Store.DeliveryAttempts(ctx, org, linkID)
	if err != nil {
		return nil, err
	}
	out.Data = s.attempts(raw, linkflow.LinkEventID(linkID))
	return out, nil
}

// EventDeliveries is an event's webhook delivery and its attempts.
type EventDeliveries struct {
	EventID  string        `json:"eventId"`
	Delivery *DeliveryView `json:"delivery"`
	// Data lists the attempts, oldest first.
	Data []Attempt `json:"data"`
}

// EventDeliveries returns the delivery and attempts of any event of the
// organization, a link's or a connection's; linkflow.ErrNotFound when it has
// no delivery of that event (not dispatched yet, or expired).
func (s *Service) EventDeliveries(ctx context.Context, org, eventID string) (*EventDeliveries, error) {
	del, _, err := s.cfg.Store.LoadDelivery(ctx, org, eventID)
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if del.LinkID != "" {
		raw, err = s.cfg.Store.DeliveryAttempts(ctx, org, del.LinkID)
	} else {
		raw, err = s.cfg.Store.EventAttempts(ctx, org, eventID)
	}
	if err != nil && !errors.Is(err, linkflow.ErrNotFound) {
		return nil, err
	}
	return &EventDeliveries{EventID: eventID, Delivery: viewOf(del), Data: s.attempts(raw, eventID)}, nil
}

// attempts decodes an attempt log, skipping entries it cannot read.
func (s *Service) attempts(raw []json.RawMessage, eventID string) []Attempt {
	out := make([]Attempt, 0, len(raw))
	for _, r := range raw {
		var a Attempt
		if err := json.Unmarshal(r, &a); err != nil {
			s.log.Warn("unreadable attempt log entry", zap.String("event_id", eventID), zap.Error(err))
			continue
		}
		out = append(out, a)
	}
	return out
}

// ErrNotDispatched is Redeliver's answer for an ended link whose event the
// dispatcher has not taken yet.
var ErrNotDispatched = errors.New("the link's event has not reached the dispatcher yet")

// Redeliver sends a link's event again now, with the same webhook-id. A
// delivery still retrying moves its next attempt to now without using up a
// retry; a finished one (succeeded, failed, gone) makes one extra attempt.
// A link that has not ended is a *linkflow.StateError; one without a webhook
// URL linkflow.ErrNoTarget.
func (s *Service) Redeliver(ctx context.Context, org, linkID string) (*DeliveryView, error) {
	l, err := s.cfg.Store.Link(ctx, org, linkID)
	if err != nil {
		return nil, err
	}
	if !l.Status.Terminal() {
		return nil, &linkflow.StateError{Action: linkflow.ActionRedeliver, Status: l.Status}
	}
	del, err := s.cfg.Store.ResendDelivery(ctx, org, linkflow.LinkEventID(linkID), linkflow.TriggerManual, false,
		s.cfg.Now(), s.cfg.FailedRetention)
	switch {
	case errors.Is(err, linkflow.ErrNotFound):
		return nil, ErrNotDispatched
	case err != nil:
		return nil, err
	}
	s.wake()
	return viewOf(del), nil
}

// Failed lists an organization's deliveries that exhausted their schedule
// in the last FailedRetention, oldest first, with the cursor of the next
// page ("" at the end).
func (s *Service) Failed(ctx context.Context, org, cursor string, limit int) ([]*DeliveryView, string, error) {
	dels, next, err := s.cfg.Store.FailedDeliveries(ctx, org, cursor, limit, s.cfg.Now().Add(-s.cfg.FailedRetention), time.Time{})
	if err != nil {
		return nil, "", err
	}
	out := make([]*DeliveryView, len(dels))
	for i, d := range dels {
		out[i] = viewOf(d)
	}
	return out, next, nil
}

// ReplayFilter selects failed deliveries to replay.
type ReplayFilter struct {
	// EventIDs, when set, names the events to replay.
	EventIDs []string
	// Since and Until bound when the deliveries failed; zero is unbounded
	// (Until: the call's start, as a later one is).
	Since time.Time
	Until time.Time
	// Limit bounds how many one call replays. Default and maximum 1000.
	Limit int
}

// ReplayResult is what a replay did.
type ReplayResult struct {
	// Replayed counts deliveries sent again.
	Replayed int `json:"replayed"`
	// More is set when the limit stopped the replay before the end.
	More bool `json:"more"`
}

// ReplayFailed sends failed deliveries again now (one attempt each, same
// webhook-id); those that fail again stay failed.
func (s *Service) ReplayFailed(ctx context.Context, org string, f ReplayFilter) (*ReplayResult, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	now := s.cfg.Now()
	res := &ReplayResult{}
	replay := func(eventID string) error {
		_, err := s.cfg.Store.ResendDelivery(ctx, org, eventID, linkflow.TriggerReplay, true, now, s.cfg.FailedRetention)
		switch {
		case err == nil:
			res.Replayed++
		case errors.Is(err, linkflow.ErrNotFound), errors.Is(err, linkflow.ErrNotFailed), errors.Is(err, linkflow.ErrNoTarget):
		default:
			return err
		}
		return nil
	}
	defer func() {
		if res.Replayed > 0 {
			s.wake()
		}
	}()
	if len(f.EventIDs) > 0 {
		for i, id := range f.EventIDs {
			if i == limit {
				res.More = true
				break
			}
			if err := replay(id); err != nil {
				return res, err
			}
		}
		return res, nil
	}
	since := now.Add(-s.cfg.FailedRetention)
	if f.Since.After(since) {
		since = f.Since
	}
	// Deliveries that failed up to now, this call's start: one it replays
	// that fails again at once is failed anew, later, and not taken again.
	until := now
	if !f.Until.IsZero() && f.Until.Before(now) {
		until = f.Until
	}
	// And each once, whatever the processes' clocks: one whose failure
	// again is stamped before until by a dispatcher whose clock is behind.
	seen := map[string]bool{}
	cursor := ""
	for {
		page, next, err := s.cfg.Store.FailedDeliveries(ctx, org, cursor, min(200, limit-res.Replayed+1), since, until)
		if err != nil {
			return res, err
		}
		for _, d := range page {
			// Listed as failed before until, and failed again since
			// (another caller replayed it meanwhile): left to that one. A
			// dispatcher whose clock is behind can stamp that failure
			// before until: this call then replays it once more.
			if seen[d.EventID] || d.FailedAt.After(until) {
				continue
			}
			seen[d.EventID] = true
			if res.Replayed == limit {
				res.More = true
				return res, nil
			}
			if err := replay(d.EventID); err != nil {
				return res, err
			}
		}
		if next == "" {
			return res, nil
		}
		cursor = next
	}
}

// EventPage is a page of an organization's event log.
type EventPage struct {
	// Data holds the events, oldest first: each the webhook body, byte for
	// byte, with its "id" (the webhook-id) added first.
	Data []json.RawMessage `json:"data"`
	// NextCursor resumes after the last event: pass it as ?after= (it is the
	// cursor given when there is nothing new, null on an empty log).
	NextCursor *string `json:"nextCursor"`
	// HasMore is set when more events follow at once.
	HasMore bool `json:"hasMore"`
}

// Events lists an organization's events after a cursor (a stream
// sequence), for receivers that catch up by polling. Bodies come from the
// events' records; an event whose record is gone (past its retention) is
// left out, and so is a copy of an event at another sequence than the one
// its record names (a message published again after JetStream's duplicate
// window), so each event is listed once. The records are read in batches,
// and a page ends early (HasMore) once its bodies would pass MaxPageBytes.
func (s *Service) Events(ctx context.Context, org, after string, limit int) (*EventPage, error) {
	if s.cfg.Feed == nil {
		return nil, errors.New("webhooks: no event feed")
	}
	from, err := outbox.ParseCursor(after)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", linkflow.ErrBadCursor, err)
	}
	entries, more, err := s.cfg.Feed.Read(ctx, org, from, limit)
	if err != nil {
		return nil, err
	}
	page := &EventPage{Data: make([]json.RawMessage, 0, len(entries)), HasMore: more}
	size := 0
batches:
	for start := 0; start < len(entries); start += eventRecordBatch {
		batch := entries[start:min(start+eventRecordBatch, len(entries))]
		ids := make([]string, len(batch))
		for i, e := range batch {
			ids[i] = e.EventID
		}
		recs, err := s.cfg.Store.EventRecords(ctx, ids)
		if err != nil {
			return nil, err
		}
		for i, e := range batch {
			rec, ok := recs[e.EventID]
			if !ok || (rec.Seq != 0 && rec.Seq != e.Seq) {
				continue
			}
			if len(page.Data) > 0 && size+len(rec.Body) > s.cfg.MaxPageBytes {
				// The page ends before e: the cursor resumes at it.
				entries, page.HasMore = entries[:start+i], true
				break batches
			}
			size += len(rec.Body)
			page.Data = append(page.Data, withID(e.EventID, rec.Body))
		}
	}
	switch {
	case len(entries) > 0:
		next := outbox.FormatCursor(entries[len(entries)-1].Seq)
		page.NextCursor = &next
	case after != "":
		page.NextCursor = &after
	}
	return page, nil
}

// eventRecordBatch is how many event records Events reads per round trip.
const eventRecordBatch = 100

// withID puts "id" first into a JSON object body without re-encoding it.
func withID(id string, body []byte) json.RawMessage {
	idJSON, _ := json.Marshal(id)
	if len(body) < 2 || body[0] != '{' {
		out, _ := json.Marshal(map[string]any{"id": id, "body": string(body)})
		return out
	}
	out := make([]byte, 0, len(body)+len(idJSON)+7)
	out = append(out, `{"id":`...)
	out = append(out, idJSON...)
	if rest := body[1:]; len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, body[1:]...)
}

func (s *Service) wake() {
	if s.cfg.Notifier != nil {
		s.cfg.Notifier.Wake()
	}
}
