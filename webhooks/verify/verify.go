// Package verify checks linkflow webhook requests on the receiving side:
// the Standard Webhooks signature (with the official library), a timestamp
// within 5 minutes, and returns the parsed event. It depends on no other
// linkflow package, so a receiver imports just this:
//
//	v, err := verify.New(os.Getenv("LINKFLOW_WEBHOOK_SECRET"))
//	...
//	http.HandleFunc("/webhooks/linkflow", func(w http.ResponseWriter, r *http.Request) {
//		ev, err := v.Verify(r)
//		if err != nil {
//			http.Error(w, "invalid webhook", http.StatusBadRequest)
//			return
//		}
//		// ev.ID is stable across retries: use it to ignore duplicates.
//		w.WriteHeader(http.StatusNoContent)
//	})
package verify

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Errors Verify returns; match them with errors.Is.
var (
	ErrMissingHeaders = errors.New("webhook-id, webhook-timestamp or webhook-signature header missing")
	ErrTimestamp      = errors.New("webhook timestamp outside the tolerance")
	ErrSignature      = errors.New("no valid webhook signature")
	ErrBodyTooLarge   = errors.New("webhook body too large")
	ErrPayload        = errors.New("webhook body is not a linkflow event")
)

// DefaultTolerance is how far a webhook's timestamp may be from now.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBody bounds the body Verify reads: linkflow bodies are at most
// 256 KiB.
const DefaultMaxBody = 1 << 20

// Verifier verifies webhooks signed with one or more secrets. Its exported
// fields may be changed before use.
type Verifier struct {
	// Tolerance is how far webhook-timestamp may be from Now. Default 5m.
	Tolerance time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MaxBody bounds the body read. Default 1 MiB.
	MaxBody int64

	hooks []*standardwebhooks.Webhook
}

// MinSecretBytes is the shortest webhook secret New takes, decoded.
const MinSecretBytes = 16

// New returns a verifier for the organization's webhook secret ("whsec_..."),
// and optionally more secrets accepted too (while you rotate yours).
func New(secret string, more ...string) (*Verifier, error) {
	v := &Verifier{Tolerance: DefaultTolerance, Now: time.Now, MaxBody: DefaultMaxBody}
	for _, s := range append([]string{secret}, more...) {
		if !strings.HasPrefix(s, "whsec_") {
			return nil, errors.New("verify: a webhook secret starts with whsec_")
		}
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return nil, errors.New("verify: the webhook secret is not whsec_ followed by base64")
		}
		// "whsec_" and an unset variable would be an empty HMAC key, which
		// anyone can sign with.
		if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_")); err != nil || len(key) < MinSecretBytes {
			return nil, fmt.Errorf("verify: the webhook secret is too short (at least %d bytes; linkflow's have 24)", MinSecretBytes)
		}
		v.hooks = append(v.hooks, wh)
	}
	return v, nil
}

// Event is a verified linkflow webhook.
type Event struct {
	// ID is the webhook-id: the same for every retry and redelivery of one
	// event, so receivers use it to drop duplicates.
	ID string `json:"-"`
	// Type is link.succeeded, link.failed, link.expired or link.canceled,
	// or connection.error or connection.healthy (whose data is a connection,
	// not a link: see the types' documentation).
	Type string `json:"type"`
	// Timestamp is when the event happened (epoch milliseconds).
	Timestamp int64 `json:"timestamp"`
	// Data is the event's object: the link as GET /v1/links/{linkId}
	// returns it for link.* events, the connection as GET
	// /v1/connections/{connectionId} returns it for connection.* events.
	Data json.RawMessage `json:"data"`
	// Body is the request body exactly as received.
	Body []byte `json:"-"`
}

// Link is the data of a link.* event (the fields most receivers need).
type Link struct {
	LinkID         string          `json:"linkId"`
	IntegrationID  string          `json:"integrationId"`
	Status         string          `json:"status"`
	ExternalUserID string          `json:"externalUserId,omitempty"`
	ConnectionID   *string         `json:"connectionId"`
	Username       *string         `json:"username"`
	CompletedAt    *int64          `json:"completedAt"`
	Result         json.RawMessage `json:"result,omitempty"`
	// ResultOmitted is set when the result was too large for the webhook:
	// fetch it with GET /v1/links/{linkId}.
	ResultOmitted bool `json:"resultOmitted,omitempty"`
	Error         *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Link decodes the event's data as a link: for link.* events (a connection.*
// event's data is a connection, which decodes into Link's fields poorly).
func (e *Event) Link() (*Link, error) {
	var l Link
	if err := json.Unmarshal(e.Data, &l); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	return &l, nil
}

// Verify reads r's body and checks the request. The body is consumed; the
// event keeps it in Body.
func (v *Verifier) Verify(r *http.Request) (*Event, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, v.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read webhook body: %w", err)
	}
	if int64(len(body)) > v.MaxBody {
		return nil, ErrBodyTooLarge
	}
	return v.VerifyBody(body, r.Header)
}

// VerifyBody checks a body received with headers.
func (v *Verifier) VerifyBody(body []byte, headers http.Header) (*Event, error) {
	id, ts, sig := headers.Get("webhook-id"), headers.Get("webhook-timestamp"), headers.Get("webhook-signature")
	if id == "" || ts == "" || sig == "" {
		return nil, ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		// Only plain decimal, as linkflow sends it: the signature covers the
		// header as sent, and the library checks it over the number
		// written back, so "01700000000" or "+1700000000" would pass with
		// the signature of "1700000000".
		return nil, fmt.Errorf("%w: webhook-timestamp is not unix seconds in plain decimal", ErrTimestamp)
	}
	now := v.Now()
	if d := now.Sub(time.Unix(sec, 0)); d > v.Tolerance || d < -v.Tolerance {
		return nil, fmt.Errorf("%w: %s from now", ErrTimestamp, d.Round(time.Second))
	}
	// The timestamp was checked above on this verifier's clock; the library
	// checks the signature over id, timestamp and body.
	ok := false
	for _, wh := range v.hooks {
		if wh.VerifyIgnoringTimestamp(body, headers) == nil {
			ok = true
			break
		}
	}
	if !ok {
		return nil, ErrSignature
	}
	ev := &Event{ID: id, Body: body}
	if err := json.Unmarshal(body, ev); err != nil || ev.Type == "" {
		return nil, ErrPayload
	}
	return ev, nil
}
