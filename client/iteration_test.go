package client_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/linkflow/linkflow/client"
)

// Lists and the event feed, across several pages.
func TestIteration(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	var ids []string
	for range 5 {
		ids = append(ids, b.create(t, client.CreateLinkRequest{ExternalUserID: "iter"}).LinkID)
	}
	b.create(t, client.CreateLinkRequest{ExternalUserID: "someone-else"})

	page, err := b.lf.ListLinks(ctx, client.ListLinksParams{ExternalUserID: "iter", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 || page.NextCursor == nil || page.Data[0].LinkID != ids[4] {
		t.Fatalf("first page %+v", page)
	}
	var got []string
	for l, err := range b.lf.Links(ctx, client.ListLinksParams{ExternalUserID: "iter", Status: client.StatusPending, IntegrationID: "tmobile", Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l.LinkID)
	}
	if want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Links = %v, want newest first %v", got, want)
	}
	// Stopping early stops fetching: three of six links take two pages.
	rt := &flakyTransport{}
	counted := newStackClient(t, b.stack.URL, b.stack.APIKey, &http.Client{Transport: rt})
	n := 0
	for _, err := range counted.Links(ctx, client.ListLinksParams{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if len(rt.keys()) != 2 {
		t.Fatalf("%d requests for three links at two a page", len(rt.keys()))
	}

	// Each cancel records an event; the feed reads them two at a time.
	for _, id := range ids {
		if _, err := b.lf.CancelLink(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	feed := b.lf.EventFeed(client.ListEventsParams{Limit: 2})
	var seen []string
	for ev, err := range feed.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		l, err := ev.Link()
		if err != nil || ev.Type != client.EventLinkCanceled {
			t.Fatalf("event %+v: %v", ev, err)
		}
		seen = append(seen, l.LinkID)
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids) || feed.Cursor() == "" {
		t.Fatalf("feed = %v (cursor %q), want %v oldest first", seen, feed.Cursor(), ids)
	}
	// Nothing new: nothing yielded, the cursor stays.
	cursor := feed.Cursor()
	for ev := range feed.All(ctx) {
		t.Fatalf("unexpected event %+v", ev)
	}
	if feed.Cursor() != cursor {
		t.Fatalf("cursor moved from %q to %q without events", cursor, feed.Cursor())
	}
	// A new event comes from where the feed was, also for a new feed resumed
	// from the stored cursor.
	last := b.create(t, client.CreateLinkRequest{})
	if _, err := b.lf.CancelLink(ctx, last.LinkID); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*client.EventFeed{feed, b.lf.EventFeed(client.ListEventsParams{After: cursor})} {
		var ev []*client.Event
		for e, err := range f.All(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			ev = append(ev, e)
		}
		if len(ev) != 1 {
			t.Fatalf("after the cursor: %d events, want 1", len(ev))
		}
		if l, _ := ev[0].Link(); l == nil || l.LinkID != last.LinkID {
			t.Fatalf("after the cursor: %+v", ev[0])
		}
	}
	// Breaking off in the middle of a page resumes at that page's start.
	mid := b.lf.EventFeed(client.ListEventsParams{Limit: 4})
	for range mid.All(ctx) {
		break
	}
	if mid.Cursor() != "" {
		t.Fatalf("cursor %q after breaking off in the first page, want the start", mid.Cursor())
	}
}
