package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
