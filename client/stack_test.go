package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/client"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/workflow"
)

// testBundle is a linkflow stack (real redis-server, embedded JetStream)
// and clients of it: lf with the organization's API key, endUser with none.
type testBundle struct {
	stack   *teststack.Stack
	lf      *client.Client
	endUser *client.Client
}

// setup starts a stack. Rate limits are off unless mod turns them on:
// tests share one client address and run in parallel.
func setup(t *testing.T, mod func(*api.Config)) *testBundle {
	t.Helper()
	s := teststack.NewStack(t, teststack.StackOptions{
		Worker: func(c *workflow.Config) { c.Heartbeat = 200 * time.Millisecond },
		API: func(c *api.Config) {
			c.KeyLimit, c.ClientLimit, c.ClaimGuessLimit, c.LoginFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit, api.NoLimit
			if mod != nil {
				mod(c)
			}
		},
	})
	return &testBundle{stack: s, lf: newStackClient(t, s.URL, s.APIKey, nil), endUser: newStackClient(t, s.URL, "", nil)}
}

func newStackClient(t *testing.T, baseURL, key string, hc *http.Client) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: baseURL, APIKey: key, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var readOp = client.OperationInput{Resource: "paymentMethod", Action: "read"}

var writeOp = client.OperationInput{Resource: "paymentMethod", Action: "write", Arguments: map[string]string{
	"cardNumber": "4111111111111111", "expirationDate": "12/28", "cvv": "123", "nameOnCard": "John Doe", "billingZip": "10001"}}

func (b *testBundle) create(t *testing.T, req client.CreateLinkRequest) *client.CreatedLink {
	t.Helper()
	if req.IntegrationID == "" {
		req.IntegrationID = "tmobile"
	}
	if req.Operations == nil {
		req.Operations = []client.OperationInput{readOp}
	}
	l, err := b.lf.CreateLink(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (b *testBundle) claim(t *testing.T, l *client.CreatedLink, username string) {
	t.Helper()
	c, err := b.endUser.ClaimLink(context.Background(), l.LinkID, client.ClaimRequest{ClaimCode: l.ClaimCode,
		Credentials: client.Credentials{Username: username, Password: "pass_good"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.LinkID != l.LinkID || c.Status != client.StatusClaimed || c.ExpiresAt != l.ExpiresAt {
		t.Fatalf("claimed %+v", c)
	}
}

// waitLink waits until the link's status is want.
func (b *testBundle) waitLink(t *testing.T, id string, want client.Status) *client.Link {
	t.Helper()
	var l *client.Link
	testenv.Eventually(t, 15*time.Second, fmt.Sprintf("link %s to be %s", id, want), func() bool {
		var err error
		if l, err = b.lf.GetLink(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		return l.Status == want
	})
	return l
}

// hookServer is a webhook receiver answering status (settable).
func hookServer(t *testing.T, status int) (string, *atomic.Int64) {
	t.Helper()
	var st atomic.Int64
	st.Store(int64(status))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(st.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", &st
}

// A link from creation to its webhook, through every method on the way.
func TestLinkLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	catalog, err := b.lf.ListProviders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range catalog {
		for _, r := range in.Resources {
			for _, a := range r.Actions {
				found = found || (in.ID == "tmobile" && r.Name == "paymentMethod" && a.Name == "write" && len(a.Arguments) > 0 && a.Description != "")
			}
		}
	}
	if !found {
		t.Fatalf("tmobile paymentMethod write not in the catalog: %+v", catalog)
	}

	hook, _ := hookServer(t, http.StatusNoContent)
	created := b.create(t, client.CreateLinkRequest{Operations: []client.OperationInput{readOp, writeOp},
		WebhookURL: hook, ReturnURL: "https://app.example.com/done", ExternalUserID: "lifecycle", Description: "card update"})
	if created.Status != client.StatusPending || created.ClaimCode == "" || !strings.Contains(created.AppClipURL, created.LinkID) ||
		len(created.Operations) != 2 || created.Replayed || !strings.Contains(created.ReturnURL, created.LinkID) {
		t.Fatalf("created %+v", created)
	}
	l, err := b.lf.GetLink(ctx, created.LinkID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Status != client.StatusPending || l.ClaimedAt != nil || l.Username != nil || l.Description != "card update" ||
		l.CreatedAt != created.CreatedAt || client.Time(l.ExpiresAt).Sub(client.Time(l.CreatedAt)) != 4*time.Hour {
		t.Fatalf("pending link %+v", l)
	}

	b.claim(t, created, "user_good")
	l = b.waitLink(t, created.LinkID, client.StatusSucceeded)
	if l.ConnectionID == nil || l.Username == nil || *l.Username != "user_good" || l.CompletedAt == nil || l.ClaimCode != "" || l.Verifier == "" {
		t.Fatalf("succeeded link %+v", l)
	}
	results, err := l.OperationResults()
	if err != nil || len(results) != 2 || results[1].Action != "write" || !strings.Contains(string(results[0].Data), "paymentMethods") {
		t.Fatalf("results %+v, %v", results, err)
	}

	sess, err := b.endUser.GetSession(ctx, created.LinkID, created.ClaimCode)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Status != client.StatusSucceeded || sess.Challenge != nil {
		t.Fatalf("session %+v", sess)
	}
	if u, err := url.Parse(sess.RedirectURL); err != nil || u.Query().Get("verifier") != l.Verifier {
		t.Fatalf("redirect %q does not carry the verifier %s", sess.RedirectURL, l.Verifier)
	}

	// The webhook, its log, and a redelivery.
	var dels *client.LinkDeliveries
	testenv.Eventually(t, 15*time.Second, "the webhook to be delivered", func() bool {
		if dels, err = b.lf.ListLinkDeliveries(ctx, created.LinkID); err != nil {
			t.Fatal(err)
		}
		return dels.Delivery != nil && dels.Delivery.Status == "succeeded"
	})
	if len(dels.Data) != 1 || dels.Data[0].Trigger != "initial" || dels.Data[0].StatusCode == nil || *dels.Data[0].StatusCode != 204 ||
		dels.Delivery.Type != client.EventLinkSucceeded || dels.Delivery.DeliveredAt == nil {
		t.Fatalf("deliveries %+v, delivery %+v", dels.Data, dels.Delivery)
	}
	d, err := b.lf.RedeliverLinkEvent(ctx, created.LinkID)
	if err != nil {
		t.Fatal(err)
	}
	if d.EventID != dels.Delivery.EventID {
		t.Fatalf("redelivered %+v", d)
	}
	testenv.Eventually(t, 15*time.Second, "the redelivery attempt", func() bool {
		if dels, err = b.lf.ListLinkDeliveries(ctx, created.LinkID); err != nil {
			t.Fatal(err)
		}
		return len(dels.Data) == 2 && dels.Data[1].Trigger == "manual"
	})

	// The event log has the link's event, whose data is the link.
	var ev *client.Event
	for e, err := range b.lf.EventFeed(client.ListEventsParams{}).All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == dels.Delivery.WebhookID {
			ev = e
		}
	}
	if ev == nil || ev.Type != client.EventLinkSucceeded {
		t.Fatalf("event %+v", ev)
	}
	if el, err := ev.Link(); err != nil || el.LinkID != created.LinkID || el.Status != client.StatusSucceeded {
		t.Fatalf("event link %+v, %v", el, err)
	}

	// A finished link cannot be canceled; a pending one can.
	_, err = b.lf.CancelLink(ctx, created.LinkID)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict || apiErr.Code != client.CodeConflict {
		t.Fatalf("cancel a finished link: %v", err)
	}
	other := b.create(t, client.CreateLinkRequest{})
	canceled, err := b.lf.CancelLink(ctx, other.LinkID)
	if err != nil {
		t.Fatal(err)
	}
	if canceled.Status != client.StatusCanceled || canceled.CompletedAt == nil {
		t.Fatalf("canceled %+v", canceled)
	}
}

// An MFA challenge answered through the end user's endpoints.
func TestEndUserChallenge(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	created := b.create(t, client.CreateLinkRequest{})
	b.claim(t, created, "user_mfa")

	var sess *client.Session
	testenv.Eventually(t, 15*time.Second, "the challenge", func() bool {
		var err error
		if sess, err = b.endUser.GetSession(ctx, created.LinkID, created.ClaimCode); err != nil {
			t.Fatal(err)
		}
		return sess.Status == client.StatusAwaitingInput && sess.Challenge != nil
	})
	ch := sess.Challenge
	if ch.ID == "" || ch.Type != "otp" || ch.AttemptsLeft < 2 || ch.ExpiresAt == 0 {
		t.Fatalf("challenge %+v", ch)
	}
	if _, err := b.endUser.SubmitInput(ctx, created.LinkID, client.InputRequest{ClaimCode: created.ClaimCode, ChallengeID: ch.ID, Response: "000000"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "the challenge to come back after a wrong answer", func() bool {
		var err error
		if sess, err = b.endUser.GetSession(ctx, created.LinkID, created.ClaimCode); err != nil {
			t.Fatal(err)
		}
		return sess.Challenge != nil && sess.Challenge.AttemptsLeft == ch.AttemptsLeft-1
	})
	if sess.Challenge.LastError == "" {
		t.Fatalf("no lastError after a wrong answer: %+v", sess.Challenge)
	}
	if _, err := b.endUser.SubmitInput(ctx, created.LinkID, client.InputRequest{ClaimCode: created.ClaimCode, ChallengeID: sess.Challenge.ID, Response: "123456"}); err != nil {
		t.Fatal(err)
	}
	b.waitLink(t, created.LinkID, client.StatusSucceeded)

	// A wrong claim code is a 404, like an unknown link.
	if _, err := b.endUser.GetSession(ctx, created.LinkID, "clm_wrong"); !client.IsNotFound(err) {
		t.Fatalf("wrong code: %v", err)
	}
}

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

// Webhooks that exhaust their schedule, listed across pages and replayed.
func TestFailedWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	hook, status := hookServer(t, http.StatusInternalServerError)
	var links []*client.CreatedLink
	for range 3 {
		l := b.create(t, client.CreateLinkRequest{WebhookURL: hook})
		b.claim(t, l, "user_good")
		links = append(links, l)
	}
	var failed []*client.Delivery
	testenv.Eventually(t, 20*time.Second, "three failed deliveries", func() bool {
		failed = failed[:0]
		for d, err := range b.lf.FailedWebhooks(ctx, client.ListFailedWebhooksParams{Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			failed = append(failed, d)
		}
		return len(failed) == 3
	})
	for _, d := range failed {
		if d.Status != "failed" || d.FailedAt == nil || d.LastStatusCode == nil || *d.LastStatusCode != 500 {
			t.Fatalf("failed delivery %+v", d)
		}
	}
	page, err := b.lf.ListFailedWebhooks(ctx, client.ListFailedWebhooksParams{Limit: 2})
	if err != nil || len(page.Data) != 2 || page.NextCursor == nil {
		t.Fatalf("first page %+v, %v", page, err)
	}

	status.Store(http.StatusNoContent)
	res, err := b.lf.ReplayFailedWebhooks(ctx, client.ReplayRequest{EventIDs: []string{failed[0].EventID}})
	if err != nil || res.Replayed != 1 || res.More {
		t.Fatalf("replay one: %+v, %v", res, err)
	}
	res, err = b.lf.ReplayFailedWebhooks(ctx, client.ReplayRequest{})
	if err != nil || res.Replayed != 2 {
		t.Fatalf("replay the rest: %+v, %v", res, err)
	}
	for _, l := range links {
		testenv.Eventually(t, 15*time.Second, "the replayed delivery of "+l.LinkID, func() bool {
			d, err := b.lf.ListLinkDeliveries(ctx, l.LinkID)
			if err != nil {
				t.Fatal(err)
			}
			return d.Delivery != nil && d.Delivery.Status == "succeeded"
		})
	}
}

// CreateLink's automatic Idempotency-Key against linkflow itself: a repeat
// with the key answers the first link, and an answer lost on the way back
// is retried into that same link.
func TestCreateIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	rt := &flakyTransport{}
	lf := newStackClient(t, b.stack.URL, b.stack.APIKey, &http.Client{Transport: rt})
	req := client.CreateLinkRequest{IntegrationID: "tmobile", Operations: []client.OperationInput{readOp}, ExternalUserID: "idem-1"}
	first, err := lf.CreateLink(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	key := rt.keys()[0]
	if key == "" || first.Replayed {
		t.Fatalf("key %q, first %+v", key, first)
	}
	again := req
	again.IdempotencyKey = key
	second, err := lf.CreateLink(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if second.LinkID != first.LinkID || second.ClaimCode != first.ClaimCode || !second.Replayed {
		t.Fatalf("repeat with key %s: %+v, want %s replayed", key, second, first.LinkID)
	}
	// The same key with another body is a conflict.
	again.ExternalUserID = "idem-other"
	if _, err := lf.CreateLink(ctx, again); !isCode(err, client.CodeConflict) {
		t.Fatalf("key reused with another body: %v", err)
	}

	// linkflow creates the link, the answer is lost, the client retries.
	rt.dropNext.Store(true)
	req.ExternalUserID = "idem-2"
	lost, err := lf.CreateLink(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	keys := rt.keys()
	if n := len(keys); n != 5 || keys[3] != keys[4] || keys[3] == key {
		t.Fatalf("keys %v: want the lost try and its retry to share a new key", keys)
	}
	if !lost.Replayed {
		t.Fatalf("the retry after a lost answer was not a replay: %+v", lost)
	}
	n := 0
	for l, err := range b.lf.Links(ctx, client.ListLinksParams{ExternalUserID: "idem-2"}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.LinkID != lost.LinkID {
			t.Fatalf("a second link %s", l.LinkID)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d links for one create", n)
	}
}

// flakyTransport records the Idempotency-Key of each request and, when
// dropNext is set, lets one request reach linkflow but loses its answer.
type flakyTransport struct {
	dropNext atomic.Bool
	mu       sync.Mutex
	sent     []string
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.sent = append(f.sent, r.Header.Get("Idempotency-Key"))
	f.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && f.dropNext.CompareAndSwap(true, false) {
		resp.Body.Close()
		return nil, errors.New("connection reset (simulated, after linkflow answered)")
	}
	return resp, err
}

func (f *flakyTransport) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sent...)
}

func isCode(err error, code string) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code == code
}

// linkflow's errors come back as *client.Error with their details.
func TestStackErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	_, err := b.lf.GetLink(ctx, "link_"+strings.Repeat("0", 32))
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusNotFound || e.Code != client.CodeNotFound || e.Message == "" ||
		!strings.HasPrefix(e.RequestID, "req_") || !client.IsNotFound(err) {
		t.Fatalf("404: %#v", err)
	}

	_, err = b.lf.CreateLink(ctx, client.CreateLinkRequest{IntegrationID: "tmobile", WebhookURL: "not a url",
		Operations: []client.OperationInput{{Resource: "paymentMethod", Action: "write", Arguments: map[string]string{"cardNumber": "4111111111111112"}}}})
	if !errors.As(err, &e) || e.StatusCode != http.StatusBadRequest || e.Code != client.CodeBadRequest || e.RequestID == "" {
		t.Fatalf("400: %#v", err)
	}
	paths := map[string]bool{}
	for _, is := range e.Issues {
		paths[is.Path] = true
	}
	if !paths["webhookUrl"] || !paths["operations[0].arguments.cardNumber"] {
		t.Fatalf("issues %+v", e.Issues)
	}

	if _, err := b.endUser.ClaimLink(ctx, "link_"+strings.Repeat("0", 32), client.ClaimRequest{ClaimCode: "clm_x",
		Credentials: client.Credentials{Username: "u", Password: "p"}}); !client.IsNotFound(err) {
		t.Fatalf("claim of an unknown link: %v", err)
	}
	if _, err := b.endUser.ListProviders(ctx); !isCode(err, client.CodeUnauthorized) {
		t.Fatalf("without a key: %v", err)
	}
	if _, err := b.lf.ListEvents(ctx, client.ListEventsParams{Limit: 5000}); !isCode(err, client.CodeBadRequest) {
		t.Fatalf("limit over the maximum: %v", err)
	}
}

// A real 429 from linkflow's key limit: waited out, or returned with its
// Retry-After when retries are off.
func TestStackRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) { c.KeyLimit = api.Limit{Rate: 1, Burst: 1} })
	ctx := context.Background()
	noRetry, err := client.New(client.Config{BaseURL: b.stack.URL, APIKey: b.stack.APIKey, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noRetry.ListProviders(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = noRetry.ListProviders(ctx)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeTooManyRequests || e.RetryAfter < time.Second {
		t.Fatalf("second request at 1/s: %#v", err)
	}
	if _, err := b.lf.ListProviders(ctx); err != nil {
		t.Fatalf("with retries: %v", err)
	}
}
