package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
)

// Delivery is the state of one event's webhook delivery.
type Delivery struct {
	// EventID is the event; WebhookID is its webhook-id, the same on every
	// try.
	EventID   string `json:"eventId"`
	WebhookID string `json:"webhookId"`
	Type      string `json:"type"`
	LinkID    string `json:"linkId,omitempty"`
	URL       string `json:"url,omitempty"`
	// Status is pending, succeeded, failed (the retry schedule is
	// exhausted), gone (the receiver answered 410) or no_target.
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

// Attempt is one try to deliver a webhook.
type Attempt struct {
	Attempt   int    `json:"attempt"`
	EventID   string `json:"eventId"`
	WebhookID string `json:"webhookId"`
	// Trigger is initial, retry, manual (redelivered) or replay.
	Trigger    string `json:"trigger"`
	Timestamp  int64  `json:"timestamp"`
	DurationMs int64  `json:"durationMs"`
	// StatusCode is the receiver's answer; nil when there was none.
	StatusCode   *int   `json:"statusCode"`
	Error        string `json:"error,omitempty"`
	ResponseBody string `json:"responseBody,omitempty"`
	// Outcome is succeeded, retrying, failed or gone.
	Outcome     string `json:"outcome"`
	NextRetryAt *int64 `json:"nextRetryAt"`
	Superseded  bool   `json:"superseded,omitempty"`
}

// LinkDeliveries is a link's webhook delivery and its attempts.
type LinkDeliveries struct {
	LinkID string `json:"linkId"`
	// Delivery is nil until the link has ended and its event reached a
	// dispatcher.
	Delivery *Delivery `json:"delivery"`
	// Data lists the attempts, oldest first.
	Data []Attempt `json:"data"`
}

// ListLinkDeliveries returns a link's webhook delivery and every attempt
// (GET /v1/links/{linkId}/deliveries).
func (c *Client) ListLinkDeliveries(ctx context.Context, linkID string) (*LinkDeliveries, error) {
	if linkID == "" {
		return nil, errors.New("client: ListLinkDeliveries needs a link id")
	}
	var out LinkDeliveries
	if _, err := c.do(ctx, c.get("/v1/links/"+url.PathEscape(linkID)+"/deliveries", nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EventDeliveries is one event's webhook delivery and its attempts.
type EventDeliveries struct {
	EventID  string    `json:"eventId"`
	Delivery *Delivery `json:"delivery"`
	// Data lists the attempts, oldest first.
	Data []Attempt `json:"data"`
}

// ListEventDeliveries returns the delivery and every attempt of any event,
// a link's or a connection's, by its id (the webhook-id)
// (GET /v1/events/{eventId}/deliveries). 404 until the event reaches a
// dispatcher and once its delivery record expired.
func (c *Client) ListEventDeliveries(ctx context.Context, eventID string) (*EventDeliveries, error) {
	if eventID == "" {
		return nil, errors.New("client: ListEventDeliveries needs an event id")
	}
	var out EventDeliveries
	if _, err := c.do(ctx, c.get("/v1/events/"+url.PathEscape(eventID)+"/deliveries", nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RedeliverLinkEvent sends a finished link's event again now, with the same
// webhook-id (POST /v1/links/{linkId}/deliveries/redeliver). 409 when the
// link has not ended, has no webhook URL, or its event has not reached a
// dispatcher yet.
func (c *Client) RedeliverLinkEvent(ctx context.Context, linkID string) (*Delivery, error) {
	if linkID == "" {
		return nil, errors.New("client: RedeliverLinkEvent needs a link id")
	}
	r := &request{method: http.MethodPost, path: "/v1/links/" + url.PathEscape(linkID) + "/deliveries/redeliver", auth: true}
	var out Delivery
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListFailedWebhooksParams pages GET /v1/webhooks/failed.
type ListFailedWebhooksParams struct {
	// Limit is the page size: 1 to 100, default (0) 20.
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// ListFailedWebhooks returns one page of the deliveries that exhausted their
// retry schedule, oldest first (GET /v1/webhooks/failed).
func (c *Client) ListFailedWebhooks(ctx context.Context, p ListFailedWebhooksParams) (*Page[Delivery], error) {
	q := url.Values(query{}.int("limit", p.Limit).str("cursor", p.Cursor))
	var out Page[Delivery]
	if _, err := c.do(ctx, c.get("/v1/webhooks/failed", q), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FailedWebhooks iterates over every failed delivery, oldest first, from
// p.Cursor on. An error ends the iteration.
func (c *Client) FailedWebhooks(ctx context.Context, p ListFailedWebhooksParams) iter.Seq2[*Delivery, error] {
	return pages(ctx, p.Cursor, func(ctx context.Context, cursor string) (*Page[Delivery], error) {
		p.Cursor = cursor
		return c.ListFailedWebhooks(ctx, p)
	})
}

// ReplayRequest selects the failed deliveries to replay. The zero value
// replays every one (up to 1000).
type ReplayRequest struct {
	// EventIDs replays these (at most 1000).
	EventIDs []string `json:"eventIds,omitempty"`
	// Since and Until (epoch milliseconds; see Millis) bound when they
	// failed.
	Since int64 `json:"since,omitempty"`
	Until int64 `json:"until,omitempty"`
	// Limit bounds how many: 1 to 1000, default (0) 1000.
	Limit int `json:"limit,omitempty"`
}

// ReplayResult is what a replay did.
type ReplayResult struct {
	Replayed int `json:"replayed"`
	// More is set when the limit stopped the replay before the end.
	More bool `json:"more"`
}

// ReplayFailedWebhooks sends failed deliveries again now, one attempt each
// with the same webhook-id (POST /v1/webhooks/failed/replay).
func (c *Client) ReplayFailedWebhooks(ctx context.Context, req ReplayRequest) (*ReplayResult, error) {
	r, err := jsonRequest(http.MethodPost, "/v1/webhooks/failed/replay", req)
	if err != nil {
		return nil, err
	}
	var out ReplayResult
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
