// Package bench is linkflow's load generator, behind `linkflow bench`. It
// measures a whole deployment or one kind of process, and reports throughput,
// latency percentiles, errors by code, peak memory and CPU time per link of
// every process it started (see Report).
//
// It has three modes:
//
//   - End to end (the default) drives a deployment through its public API
//     only, with linkflow's Go client: it creates a link, claims it as the
//     end user would, and waits for the link's webhook at its own receiver,
//     which verifies every signature with webhooks/verify. The deployment is
//     a running one (Config.URL, APIKey, WebhookSecret), or `linkflow dev`
//     started as a child process (Config.Embedded). Load is a closed loop
//     (Config.Concurrency links in flight) or an open loop (Config.Rate
//     links per second, sent on schedule whatever the responses do, so that
//     latency is not hidden by coordinated omission).
//   - Worker only (Config.WorkerOnly) starts its own Redis and JetStream,
//     preloads claimed links into them with the store and the outbox
//     publisher, then starts `linkflow worker` processes and measures how
//     fast they drain the links. A link is done when its completion event
//     (link.succeeded or link.failed) is in the events stream.
//   - Dispatcher only (Config.DispatcherOnly) preloads finished links with
//     their completion events the same way, then starts one
//     `linkflow dispatcher` process and measures how fast it delivers the
//     webhooks to bench's receiver.
//
// Bench starts linkflow processes from the executable Config.Binary, so that
// the figures are those of the real binary, each process in its own address
// space with its own CPU and memory accounting.
//
// Figures depend on the machine and on everything else running on it: bench,
// Redis, NATS and linkflow usually share the same cores. Compare figures
// within one run (ratios, such as claim -> webhook against create, or CPU
// per link of one process against another), and compare two builds by
// alternating their runs (A, B, A, B, ...) on the same machine and taking
// the median of each; never a single run against a figure from another day.
package bench
