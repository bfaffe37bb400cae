package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/linkflow/linkflow/client"
)

// ListenConfig configures Listen.
type ListenConfig struct {
	// Client reads the deployment's event log. Required.
	Client *client.Client
	// All prints the events already in the log first; by default Listen
	// starts with what happens next.
	All bool
	// JSON prints each event's whole body too, as its webhook carries it.
	JSON bool
	// Every is how often the log is asked for new events. Default 500ms.
	Every time.Duration
	// Out gets the events, Err what goes wrong meanwhile. Required.
	Out, Err io.Writer
}

// Listen prints a deployment's events as they happen, one line each (time,
// type, link or connection, status, failure code, event id), until ctx ends:
// what the webhooks of linkflow dev carry, without a receiver to write
// first. It reads GET /v1/events, so it needs links:read.
func Listen(ctx context.Context, cfg ListenConfig) error {
	// The largest pages: without All, the whole log (30 days) is paged
	// through to find its end.
	feed := cfg.Client.EventFeed(client.ListEventsParams{Limit: 1000})
	for _, err := range feed.All(ctx) {
		if err != nil {
			return err
		}
		if cfg.All {
			break // Follow yields them from the start of the page
		}
	}
	fmt.Fprintln(cfg.Err, "listening for events (Ctrl-C stops)")
	for ev, err := range feed.Follow(ctx, cmp.Or(cfg.Every, 500*time.Millisecond)) {
		if err != nil {
			if permanent(err) {
				return err // a revoked key, say: asking again changes nothing
			}
			fmt.Fprintln(cfg.Err, "linkflow listen:", err)
			continue
		}
		var d struct {
			LinkID, ID, Status string
			Error              *struct{ Code string }
		}
		_ = json.Unmarshal(ev.Data, &d)
		code := ""
		if d.Error != nil {
			code = " " + d.Error.Code
		}
		fmt.Fprintf(cfg.Out, "%s  %-18s %s  %s%s  (%s)\n", time.UnixMilli(ev.Timestamp).Format("15:04:05"), ev.Type,
			cmp.Or(d.LinkID, d.ID), d.Status, code, ev.ID)
		if cfg.JSON {
			b, _ := json.MarshalIndent(ev, "", "  ")
			fmt.Fprintln(cfg.Out, string(b))
		}
	}
	return nil
}

// permanent says whether an answer will not change by asking again:
// linkflow's own 4xx (its error envelope: not a proxy's 404 while a
// deployment rolls out, say) other than a timeout or a rate limit.
func permanent(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code != "" && e.StatusCode >= 400 && e.StatusCode < 500 &&
		e.StatusCode != http.StatusRequestTimeout && e.StatusCode != http.StatusTooManyRequests
}
