// Package outbox carries linkflow's messages from Redis to NATS JetStream,
// and owns where they go: the streams, the consumers and the subjects.
//
// A state change that must be announced (a link claimed, a link ended, a
// connection's status changed) records its message in an outbox in Redis in
// the same atomic step as the change itself (the store's scripts are handed
// the message, built here, as arguments). The Publisher then puts it on
// JetStream with its message id, which JetStream de-duplicates, and once
// JetStream confirms it, the outbox entry is forgotten (in batches). A
// message whose publish failed, or whose process died in between, stays in
// the outbox; the Relay publishes it again, as it is, after a while. Nothing
// is lost, and a message published twice is dropped by JetStream within its
// duplicate window and by its consumer's own state in Redis after it.
//
// Messages carry ids only (link, organization, event): never a secret or an
// operation's arguments. What they point to lives in Redis.
//
// The package also sends the core NATS notifications that wake a worker (a
// cancel request, a challenge's answer) or a dispatcher (a redelivery): not
// persisted, since each has a slower path through Redis.
package outbox
