package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/linkflow/linkflow/client"
)

func ExampleClient_CreateLink() {
	ctx := context.Background()
	lf, err := client.New(client.Config{BaseURL: "https://linkflow.example.com", APIKey: os.Getenv("LINKFLOW_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	link, err := lf.CreateLink(ctx, client.CreateLinkRequest{
		IntegrationID:  "tmobile",
		Operations:     []client.OperationInput{{Resource: "paymentMethod", Action: "read"}},
		WebhookURL:     "https://your-server.example.com/webhook",
		IdempotencyKey: "order-1234", // optional; without it each call gets a random one
	})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		log.Fatalf("%s (request %s): %v", apiErr.Code, apiErr.RequestID, apiErr.Issues)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(link.AppClipURL)
}

func ExampleClient_EventFeed() {
	ctx := context.Background()
	lf, err := client.New(client.Config{BaseURL: "https://linkflow.example.com", APIKey: os.Getenv("LINKFLOW_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	saved := "" // the cursor stored last time; empty reads from the start
	feed := lf.EventFeed(client.ListEventsParams{After: saved})
	for ev, err := range feed.All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		if ev.Type == client.EventLinkSucceeded {
			link, err := ev.Link()
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(ev.ID, link.LinkID, client.TimeOf(link.CompletedAt))
		}
	}
	saved = feed.Cursor() // store it for next time
	_ = saved
}

func ExampleClient_Links() {
	ctx := context.Background()
	lf, err := client.New(client.Config{BaseURL: "https://linkflow.example.com", APIKey: os.Getenv("LINKFLOW_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	for link, err := range lf.Links(ctx, client.ListLinksParams{Status: client.StatusFailed, ExternalUserID: "customer-42"}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(link.LinkID, link.Error.Code)
	}
}
