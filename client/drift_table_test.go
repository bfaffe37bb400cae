package client

import (
	"context"
	"reflect"
)

// leftOut are the document's operations the client does not call, each
// with the reason.
var leftOut = map[string]string{
	"healthz":              "process liveness, for load balancers and orchestrators, not for a customer's backend",
	"readyz":               "process readiness, for load balancers and orchestrators",
	"openapi":              "serves the document this test reads",
	"claimLinkPreflight":   "a CORS preflight: browsers send it on their own before claimLink",
	"getSessionPreflight":  "a CORS preflight: browsers send it on their own before getSession",
	"submitInputPreflight": "a CORS preflight: browsers send it on their own before submitInput",
	"hostedPage":           "linkflow's HTML page for the end user (the appClipUrl), opened in a browser",
	"hostedLogin":          "the hosted page's HTML form post; apps claim with ClaimLink",
	"hostedMFA":            "the hosted page's HTML form post; apps answer with SubmitInput",
	"hostedDecline":        "the hosted page's HTML form post; apps decline with DeclineLink",
	"declineLinkPreflight": "a CORS preflight: browsers send it on their own before declineLink",
	"getSandboxAccount":    "served only by a development server (linkflow dev), to inspect the sandbox",
}

// allowed lists deliberate differences between a schema and the Go type
// used for it, "GoType.property" with the reason. Keep it short.
var allowed = map[string]string{
	// (none yet: the Go types carry every documented property)
}

// helperMethods are exported Client methods that call no operation.
var helperMethods = map[string]string{
	"WithAPIKey": "a copy of the client with another key",
}

// mapping ties an operation to the methods that call it.
type mapping struct {
	method, path string // as in the document
	methods      []string
	// call invokes every method with every parameter set.
	call func(ctx context.Context, c *Client) error
	// body is the Go type of the request body; nil when it has none.
	body reflect.Type
	// answers are the Go types of the 2xx answers, by status.
	answers map[string]reflect.Type
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

func ok[T any](_ T, err error) error { return err }

func drain[T any](seq func(func(T, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return nil
}

var mapped = map[string]mapping{
	"issueToken": {"POST", "/v1/auth/token", []string{"IssueToken"}, func(ctx context.Context, c *Client) error {
		return ok(c.IssueToken(ctx, TokenRequest{GrantType: GrantPassword, ClientID: "org_1", ClientSecret: "s", Username: "u", Password: "p", Scope: "links:read"}))
	}, typeOf[TokenRequest](), map[string]reflect.Type{"200": typeOf[Token]()}},

	"createLink": {"POST", "/v1/links", []string{"CreateLink"}, func(ctx context.Context, c *Client) error {
		return ok(c.CreateLink(ctx, CreateLinkRequest{IntegrationID: "tmobile",
			Operations: []OperationInput{{Resource: "r", Action: "a", Arguments: map[string]any{"x": 1}}},
			WebhookURL: "https://w", ReturnURL: "https://r", ExternalUserID: "e", Debug: true, ExpiresIn: 60,
			Description: "d", RequiredUsername: "u", ConnectionID: "conn_1"}))
	}, typeOf[CreateLinkRequest](), map[string]reflect.Type{"201": typeOf[CreatedLink]()}},

	"listLinks": {"GET", "/v1/links", []string{"ListLinks", "Links"}, func(ctx context.Context, c *Client) error {
		p := ListLinksParams{Status: StatusPending, IntegrationID: "tmobile", ExternalUserID: "e", Limit: 5, Cursor: "c",
			Expand: []Expand{ExpandIntegration}}
		if err := ok(c.ListLinks(ctx, p)); err != nil {
			return err
		}
		return drain(c.Links(ctx, p))
	}, nil, map[string]reflect.Type{"200": typeOf[Page[Link]]()}},

	"getLink": {"GET", "/v1/links/{linkId}", []string{"GetLink"}, func(ctx context.Context, c *Client) error {
		return ok(c.GetLink(ctx, "link_1", ExpandIntegration))
	}, nil, map[string]reflect.Type{"200": typeOf[Link]()}},

	"cancelLink": {"POST", "/v1/links/{linkId}/cancel", []string{"CancelLink"}, func(ctx context.Context, c *Client) error {
		return ok(c.CancelLink(ctx, "link_1"))
	}, nil, map[string]reflect.Type{"200": typeOf[Link](), "202": typeOf[Link]()}},

	"listProviders": {"GET", "/v1/providers", []string{"ListProviders"}, func(ctx context.Context, c *Client) error {
		return ok(c.ListProviders(ctx))
	}, nil, map[string]reflect.Type{"200": typeOf[providerList]()}},

	"claimLink": {"POST", "/v1/links/{linkId}/claim", []string{"ClaimLink"}, func(ctx context.Context, c *Client) error {
		return ok(c.ClaimLink(ctx, "link_1", ClaimRequest{ClaimCode: "clm_1", Credentials: Credentials{Username: "u", Password: "p"}}))
	}, typeOf[ClaimRequest](), map[string]reflect.Type{"202": typeOf[Claimed]()}},

	"getSession": {"GET", "/v1/links/{linkId}/session", []string{"GetSession"}, func(ctx context.Context, c *Client) error {
		return ok(c.GetSession(ctx, "link_1", "clm_1"))
	}, nil, map[string]reflect.Type{"200": typeOf[Session]()}},

	"submitInput": {"POST", "/v1/links/{linkId}/input", []string{"SubmitInput"}, func(ctx context.Context, c *Client) error {
		return ok(c.SubmitInput(ctx, "link_1", InputRequest{ClaimCode: "clm_1", ChallengeID: "ch", Response: "123456"}))
	}, typeOf[InputRequest](), map[string]reflect.Type{"202": typeOf[Session]()}},

	"declineLink": {"POST", "/v1/links/{linkId}/decline", []string{"DeclineLink"}, func(ctx context.Context, c *Client) error {
		return ok(c.DeclineLink(ctx, "link_1", DeclineRequest{ClaimCode: "clm_1"}))
	}, typeOf[DeclineRequest](), map[string]reflect.Type{"200": typeOf[Session]()}},

	"getLinkTrace": {"GET", "/v1/links/{linkId}/trace", []string{"GetLinkTrace"}, func(ctx context.Context, c *Client) error {
		return ok(c.GetLinkTrace(ctx, "link_1"))
	}, nil, map[string]reflect.Type{"200": typeOf[LinkTrace]()}},

	"listLinkDeliveries": {"GET", "/v1/links/{linkId}/deliveries", []string{"ListLinkDeliveries"}, func(ctx context.Context, c *Client) error {
		return ok(c.ListLinkDeliveries(ctx, "link_1"))
	}, nil, map[string]reflect.Type{"200": typeOf[LinkDeliveries]()}},

	"listEventDeliveries": {"GET", "/v1/events/{eventId}/deliveries", []string{"ListEventDeliveries"}, func(ctx context.Context, c *Client) error {
		return ok(c.ListEventDeliveries(ctx, "evt_1"))
	}, nil, map[string]reflect.Type{"200": typeOf[EventDeliveries]()}},

	"redeliverLinkEvent": {"POST", "/v1/links/{linkId}/deliveries/redeliver", []string{"RedeliverLinkEvent"}, func(ctx context.Context, c *Client) error {
		return ok(c.RedeliverLinkEvent(ctx, "link_1"))
	}, nil, map[string]reflect.Type{"202": typeOf[Delivery]()}},

	"listFailedWebhooks": {"GET", "/v1/webhooks/failed", []string{"ListFailedWebhooks", "FailedWebhooks"}, func(ctx context.Context, c *Client) error {
		p := ListFailedWebhooksParams{Limit: 5, Cursor: "c"}
		if err := ok(c.ListFailedWebhooks(ctx, p)); err != nil {
			return err
		}
		return drain(c.FailedWebhooks(ctx, p))
	}, nil, map[string]reflect.Type{"200": typeOf[Page[Delivery]]()}},

	"replayFailedWebhooks": {"POST", "/v1/webhooks/failed/replay", []string{"ReplayFailedWebhooks"}, func(ctx context.Context, c *Client) error {
		return ok(c.ReplayFailedWebhooks(ctx, ReplayRequest{EventIDs: []string{"evt_1"}, Since: 1, Until: 2, Limit: 3}))
	}, typeOf[ReplayRequest](), map[string]reflect.Type{"202": typeOf[ReplayResult]()}},

	"listEvents": {"GET", "/v1/events", []string{"ListEvents", "EventFeed"}, func(ctx context.Context, c *Client) error {
		p := ListEventsParams{After: "c", Limit: 5}
		if err := ok(c.ListEvents(ctx, p)); err != nil {
			return err
		}
		return drain(c.EventFeed(p).All(ctx))
	}, nil, map[string]reflect.Type{"200": typeOf[EventPage]()}},

	"listConnections": {"GET", "/v1/connections", []string{"ListConnections", "Connections"}, func(ctx context.Context, c *Client) error {
		p := ListConnectionsParams{ExternalUserID: "e", IntegrationID: "tmobile", Status: ConnectionHealthy, Limit: 5, Cursor: "c",
			Expand: []Expand{ExpandIntegration}}
		if err := ok(c.ListConnections(ctx, p)); err != nil {
			return err
		}
		return drain(c.Connections(ctx, p))
	}, nil, map[string]reflect.Type{"200": typeOf[Page[Connection]]()}},

	"getConnection": {"GET", "/v1/connections/{connectionId}", []string{"GetConnection"}, func(ctx context.Context, c *Client) error {
		return ok(c.GetConnection(ctx, "conn_1", GetConnectionParams{IncludeSecrets: true, RefreshPolicy: RefreshForce, Expand: []Expand{ExpandIntegration}}))
	}, nil, map[string]reflect.Type{"200": typeOf[Connection]()}},

	"updateConnection": {"PATCH", "/v1/connections/{connectionId}", []string{"UpdateConnection"}, func(ctx context.Context, c *Client) error {
		name, off := "n", true
		return ok(c.UpdateConnection(ctx, "conn_1", ConnectionPatch{Metadata: map[string]any{"a": 1}, DisplayName: &name, Disabled: &off}))
	}, typeOf[ConnectionPatch](), map[string]reflect.Type{"200": typeOf[Connection]()}},

	"deleteConnection": {"DELETE", "/v1/connections/{connectionId}", []string{"DeleteConnection"}, func(ctx context.Context, c *Client) error {
		return ok(c.DeleteConnection(ctx, "conn_1"))
	}, nil, map[string]reflect.Type{"200": typeOf[Connection]()}},

	"listConnectionSecretReads": {"GET", "/v1/connections/{connectionId}/secret-reads", []string{"ListConnectionSecretReads"}, func(ctx context.Context, c *Client) error {
		return ok(c.ListConnectionSecretReads(ctx, "conn_1", 5))
	}, nil, map[string]reflect.Type{"200": typeOf[SecretReads]()}},
}
