// Package client is a typed Go client for linkflow's API. It depends on the
// standard library only, so a customer's backend imports just this:
//
//	lf, err := client.New(client.Config{BaseURL: "https://linkflow.example.com", APIKey: os.Getenv("LINKFLOW_API_KEY")})
//	if err != nil {
//		log.Fatal(err)
//	}
//	link, err := lf.CreateLink(ctx, client.CreateLinkRequest{
//		IntegrationID: "tmobile",
//		Operations:    []client.OperationInput{{Resource: "paymentMethod", Action: "read"}},
//		WebhookURL:    "https://your-server.example.com/webhook",
//	})
//	// hand link.AppClipURL to the end user
//
// Every method takes a context first and maps to one operation of the API's
// OpenAPI document (api/openapi.yaml in the linkflow repository); a test
// fails when the document and this package drift apart. Times are epoch
// milliseconds, as in the API: int64 where the API always has a value, *int64
// where it may be null. Time and TimeOf convert them.
//
// # Errors
//
// An answer other than 2xx is an *Error: the HTTP status, the envelope's
// stable Code (NOT_FOUND, CONFLICT_ERROR, ...), Message, Detail, the Issues of
// a validation failure, the RequestID to quote to linkflow's operators, and
// RetryAfter. Match it with errors.As, or IsNotFound for the common case.
// Network failures are returned as they come from net/http, wrapped.
//
// # Retries and idempotency
//
// A call is tried at most Config.MaxAttempts times (default 3). It is tried
// again only when that cannot do a thing twice:
//
//   - 429 Too Many Requests, for every call: linkflow refuses before it does
//     anything.
//   - 503 Service Unavailable, a proxy's 502 or 504, and transport errors (no
//     answer, a broken connection), only for idempotent calls: GET, PATCH and DELETE, and
//     CreateLink, which always sends an Idempotency-Key (its own random one,
//     from crypto/rand, unless the request names one) and sends the same key
//     and the same body on every try, so linkflow answers a repeat with the
//     first link. Other POSTs (claim, input, decline, cancel, redeliver,
//     replay, the token endpoint) are never repeated after a 503 or a transport error,
//     where linkflow may have acted on them.
//
// Between tries the client waits for the answer's Retry-After (seconds), or
// without one for a short exponential backoff with jitter. A Retry-After
// longer than Config.MaxRetryWait (default 30 s), or beyond the context's
// deadline, is not waited for: the call returns the *Error at once, with its
// RetryAfter. Waits end early when the context is done.
//
// # Pagination and the event feed
//
// The List methods return one page (a Page with its NextCursor); Links,
// Connections and FailedWebhooks are iterators (iter.Seq2) over every page;
// a page that cannot be read ends one with a *PageError naming the cursor
// to resume from.
// EventFeed reads GET /v1/events in order until nothing more is there, and
// keeps the cursor to resume from. Cursors are opaque strings: store and pass
// them back, never parse them.
package client
