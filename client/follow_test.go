package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/linkflow/linkflow/client"
)

// Follow reads the log, waits, and reads again from where it was: events
// come as they are added; an error (linkflow restarting) is yielded and
// following goes on.
func TestEventFeedFollow(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t,
		answer{status: http.StatusOK, body: `{"data":[{"id":"evt_1","type":"link.succeeded","timestamp":1,"data":{}}],"nextCursor":"c1","hasMore":false}`},
		answer{status: http.StatusOK, body: `{"data":[],"nextCursor":"c1","hasMore":false}`},
		answer{status: http.StatusBadRequest, body: `{"meta":{"request_id":"r"},"error":{"code":"BAD_REQUEST","message":"no"}}`},
		answer{status: http.StatusOK, body: `{"data":[{"id":"evt_2","type":"link.failed","timestamp":2,"data":{}}],"nextCursor":"c2","hasMore":false}`},
	)
	c, waits := newClient(t, rec, client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids []string
	errs := 0
	for ev, err := range c.EventFeed(client.ListEventsParams{}).Follow(ctx, 250*time.Millisecond) {
		if err != nil {
			errs++
			continue
		}
		if ids = append(ids, ev.ID); len(ids) == 2 {
			break
		}
	}
	if len(ids) != 2 || ids[0] != "evt_1" || ids[1] != "evt_2" || errs != 1 {
		t.Fatalf("events %v, %d errors", ids, errs)
	}
	reqs := rec.requests()
	if got := reqs[len(reqs)-1].URL.Query().Get("after"); got != "c1" {
		t.Fatalf("the last read started after %q, want c1", got)
	}
	if len(*waits) < 2 || (*waits)[0] != 250*time.Millisecond {
		t.Fatalf("waits %v", *waits)
	}
}
