package client

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"time"
)

// Event types.
const (
	EventLinkSucceeded     = "link.succeeded"
	EventLinkFailed        = "link.failed"
	EventLinkExpired       = "link.expired"
	EventLinkCanceled      = "link.canceled"
	EventConnectionError   = "connection.error"
	EventConnectionHealthy = "connection.healthy"
)

// Event is an entry of the event log: a webhook body with its id.
type Event struct {
	// ID is the webhook-id: receivers use it to drop an event they already
	// handled from a webhook.
	ID        string `json:"id"`
	Type      string `json:"type"`
	Timestamp int64  `json:"timestamp"`
	// Data is the link for link.* events (see Link) and the connection,
	// credentials redacted, for connection.* events (see Connection).
	Data json.RawMessage `json:"data"`
}

// Link decodes the data of a link.* event.
func (e *Event) Link() (*Link, error) {
	var l Link
	if err := json.Unmarshal(e.Data, &l); err != nil {
		return nil, fmt.Errorf("client: event %s data: %w", e.ID, err)
	}
	return &l, nil
}

// Connection decodes the data of a connection.* event.
func (e *Event) Connection() (*Connection, error) {
	var c Connection
	if err := json.Unmarshal(e.Data, &c); err != nil {
		return nil, fmt.Errorf("client: event %s data: %w", e.ID, err)
	}
	return &c, nil
}

// EventPage is a page of the event log, oldest first.
type EventPage struct {
	Data []Event `json:"data"`
	// NextCursor is passed as After for what follows (also when nothing
	// new came); nil only on an empty log. It is opaque.
	NextCursor *string `json:"nextCursor"`
	// HasMore is set when more events follow at once.
	HasMore bool `json:"hasMore"`
}

// ListEventsParams pages GET /v1/events.
type ListEventsParams struct {
	// After is the NextCursor of the previous page; empty for the start of
	// the log.
	After string
	// Limit is the page size: 1 to 1000, default (0) 100.
	Limit int
}

// ListEvents returns one page of the organization's events, oldest first
// (GET /v1/events), every event whether or not its link had a webhook URL.
func (c *Client) ListEvents(ctx context.Context, p ListEventsParams) (*EventPage, error) {
	q := url.Values(query{}.str("after", p.After).int("limit", p.Limit))
	var out EventPage
	if _, err := c.do(ctx, c.get("/v1/events", q), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EventFeed reads the event log in order and remembers where it is, so a
// receiver that was down catches up:
//
//	feed := lf.EventFeed(client.ListEventsParams{After: saved})
//	for ev, err := range feed.All(ctx) {
//		if err != nil { ... }
//		handle(ev) // drop ev.ID if a webhook brought it already
//	}
//	saved = feed.Cursor()
//
// A feed is not safe for concurrent use.
type EventFeed struct {
	c      *Client
	cursor string
	limit  int
}

// EventFeed returns a feed that starts after p.After (the beginning of the
// log when empty) and reads p.Limit events a page.
func (c *Client) EventFeed(p ListEventsParams) *EventFeed {
	return &EventFeed{c: c, cursor: p.After, limit: p.Limit}
}

// Cursor is where the feed resumes: after the last page whose every event
// All yielded. Stopping in the middle of a page resumes at the start of that
// page, so those events come again: drop them by ID. Store it as it is; it
// is opaque.
func (f *EventFeed) Cursor() string { return f.cursor }

// All yields the events after Cursor until the log has nothing more, then
// ends; call it again later for what came since. An error ends it, and the
// feed stays where it was.
func (f *EventFeed) All(ctx context.Context) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		for {
			p, err := f.c.ListEvents(ctx, ListEventsParams{After: f.cursor, Limit: f.limit})
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range p.Data {
				if !yield(&p.Data[i], nil) {
					return
				}
			}
			next := f.cursor
			if p.NextCursor != nil {
				next = cmp.Or(*p.NextCursor, f.cursor)
			}
			moved := next != f.cursor
			f.cursor = next
			if !p.HasMore || len(p.Data) == 0 || !moved {
				return
			}
		}
	}
}

// Follow yields the events after Cursor as they come, like tail -f: it reads
// what the log has, then asks again every interval (default 1s) until ctx
// ends, when it ends without an error. An error (linkflow restarting, say)
// is yielded and Follow goes on at the next interval; break to stop.
func (f *EventFeed) Follow(ctx context.Context, every time.Duration) iter.Seq2[*Event, error] {
	if every <= 0 {
		every = time.Second
	}
	return func(yield func(*Event, error) bool) {
		for {
			for ev, err := range f.All(ctx) {
				if ctx.Err() != nil {
					return
				}
				if !yield(ev, err) {
					return
				}
			}
			if f.c.sleep(ctx, every) != nil {
				return
			}
		}
	}
}
