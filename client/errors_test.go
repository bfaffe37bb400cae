package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/client"
)

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
	b := setup(t, func(c *api.Config) { c.KeyLimit = api.Limit{Rate: 0.5, Burst: 1} })
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
		t.Fatalf("second request at one per 2s: %#v", err)
	}
	if _, err := b.lf.ListProviders(ctx); err != nil {
		t.Fatalf("with retries: %v", err)
	}
}
