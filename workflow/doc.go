// Package workflow runs claimed links. Workers consume link claimed messages
// from JetStream (one durable pull consumer per integration, shared by every
// worker process), take a lease on the link in Redis, log in to the provider
// once, run every operation in order in that session, and commit the outcome
// in one atomic, fenced Redis step together with the completion event.
//
// The package also owns the JetStream topology (streams.go), the publisher of
// claimed and completion messages (publisher.go), the sweeper that expires
// links and republishes the outbox (sweeper.go), and the dead-letter stream
// (deadletter.go).
package workflow
