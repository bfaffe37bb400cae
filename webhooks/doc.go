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
//   - the state hash lf:{org}:wh:<eventId> (status, attempts, next attempt,
//     version), changed only by Lua scripts on the organization's slot;
//   - the retry schedule lf:{wh}:retry, one sorted set for every
//     organization, scored by due time. Pollers in every dispatcher claim due
//     entries by moving them forward by a visibility timeout, so an entry
//     whose dispatcher died comes back by itself;
//   - the attempt log next to the link, and the organization's failed set
//     (deliveries that exhausted the schedule, replayable for 14 days).
//
// A delivered event costs two Redis round trips: accepting it (one pipeline:
// the state script, which reads the event itself, and the claim) and
// recording its attempt (one pipeline: the record script and the settling of
// the schedule entry). The state and the schedule are on two slots, which a
// Redis Cluster runs in parallel, so neither step relies on their order: a
// claim stays hidden from pollers until it expires, a schedule entry is
// moved only while its claim holds (a redelivery that moved it first keeps
// it), and what a failed half leaves is put right at once or by the next
// claimer (store/delivery_dispatch.go). The organization's webhook secrets
// are kept in the process for a few seconds (Config.SecretCacheTTL) instead
// of being read and decrypted for every attempt.
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
// a saturated host or an open breaker goes back to the schedule a little
// later without counting as an attempt, so a hanging receiver holds its own
// slots and nobody else's.
//
// The Service is the API side: a link's deliveries, redelivery, failed
// deliveries and their replay, and the event log for receivers that catch up
// by polling. Receivers verify requests with the standalone package
// webhooks/verify.
package webhooks
