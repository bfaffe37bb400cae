// Package monitor computes the operator's view of a linkflow deployment in
// one place: the backlog (each JetStream consumer's pending and in-flight
// messages, the outbox in Redis and the age of its oldest entry, the
// webhook retry schedule and when its next entry is due, the dead letters,
// the links waiting to be claimed), and what happened lately (links
// finished by status, the codes of recent failures, the webhook receivers
// that fail). linkflow status prints it, the API's operator page shows it,
// and the Collector exports the backlog as Prometheus gauges.
//
// Where each number comes from, and why there:
//
//   - Consumers: JetStream's consumer info (NumPending, NumAckPending,
//     NumRedelivered) of every worker-<integration> consumer and of the
//     dispatcher's.
//   - Outbox, retry schedule, pending links: one pipeline of counts and
//     first entries over the 64 shards (store.Backlog).
//   - Dead letters: the message count of the dead-letter stream.
//   - Links finished by status: the events stream keeps every event for the
//     event retention, one subject per organization and type, so the
//     number of link.<status> events since a time is the pending count of
//     a short-lived consumer filtered on that type and started at that
//     time. No counter is kept for it anywhere, so nothing can drift.
//   - Recent failure codes: the newest link.failed events of that stream
//     (at most FailureSample), whose records in Redis hold the code.
//   - Failing webhook receivers: a sample of the retry schedule (the
//     soonest due entries of every shard) and their delivery states: a
//     pending delivery that was attempted and not delivered is failing,
//     grouped by host. Dispatchers keep their circuit breakers in memory,
//     per process; the schedule is what every dispatcher shares.
//
// Every computation is cached for CacheFor (5s), and callers that come
// while one runs share it, so neither a busy page nor frequent scrapes load
// Redis or NATS more than that. A part whose source cannot be read is left
// out (null in JSON) and named in Errors; the rest is still answered.
package monitor
