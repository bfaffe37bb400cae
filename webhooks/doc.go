// Package webhooks delivers completion events to customers' webhook URLs and
// answers the API's questions about those deliveries.
//
// A link's end records its event (a record by id, the organization's event
// log, the outbox) in one Redis step, and the outbox publisher puts an event
// message on JetStream (package outbox). The Dispatcher consumes those
// messages with one durable pull consumer shared by every dispatcher
// process. For each event it creates the delivery state in Redis from the
// event's record (unless a redelivered message
// finds it: the schedule never restarts), claims the first attempt in the
// retry schedule, and only then acks the message; from there on the delivery
// lives in Redis, never only in memory:
//
//   - the state hash (status, attempts, next attempt, version) in the
//     event's shard (store/doc.go), changed only by Lua scripts there;
//   - the retry schedule, one sorted set per shard scored by due time.
//     Pollers in every dispatcher claim due entries by moving them forward
//     by a visibility timeout, so an entry whose dispatcher died comes back
//     by itself. A poller reads every shard in one round trip (and claims
//     what is due in a second) when the earliest entry it knows of is due
//     (what its own process scheduled wakes it for then), and every
//     PollInterval for what others scheduled;
//   - the attempt log next to the link, and the organization's failed set
//     in each shard (deliveries that exhausted the schedule, replayable for
//     14 days).
//
// A delivered event costs two Redis commands, each one script on the
// event's shard: accepting it (delivery_accept.lua reads the event, creates
// the state and claims the first attempt) and recording its attempt
// (delivery_record.lua logs it, applies the decision and settles the
// schedule entry). A claim stays hidden from pollers until it expires, a
// schedule entry is moved only while its claim holds (a redelivery that
// moved it first keeps it), and where a step's answer is lost the claim is
// taken back or put back (store/delivery_dispatch.go). The organization's
// webhook secrets are kept in the process for a few seconds
// (Config.SecretCacheTTL) instead of being read and decrypted for every
// attempt.
//
// One attempt signs the stored body byte for byte with the official Standard
// Webhooks library (webhook-id is the event id, stable across retries;
// during a secret rotation both secrets sign), POSTs it through an HTTP
// client that never uses a proxy, never follows redirects and checks every
// dialled address against the SSRF guard, and classifies the answer: 2xx
// succeeds, 410 stops, everything else retries on the schedule (Retry-After
// honoured on 429, 502, 503 and 504) until it is exhausted.
//
// Receivers are isolated from each other: each target host has a bounded
// number of attempts in flight and a circuit breaker. A delivery that meets
// a saturated host queues for its next slot without holding a global one
// (Config.HostQueue), or waits briefly for room behind a full queue
// (Config.HostOverflowWait); beyond that, or at an open breaker, it goes
// back to the schedule a little later without counting as an attempt, so a
// hanging receiver holds its own slots and nobody else's.
//
// The Service is the API side: a link's deliveries, redelivery, failed
// deliveries and their replay, and the event log for receivers that catch up
// by polling. Receivers verify requests with the standalone package
// webhooks/verify.
package webhooks
