// Package workflow runs claimed links.
//
// A Worker consumes the claimed messages outbox puts on JetStream (one
// durable pull consumer per integration, shared by every worker process),
// takes a lease on the link in Redis (store.BeginRun), logs in to the
// provider once (package operations), runs every operation in order in that
// session, and commits the outcome in one atomic step fenced by the lease
// (store.FinishRun): status, result, connection and the completion event
// with its message in the outbox, which the worker then publishes. A
// failure anywhere fails the whole link and stores no partial result.
//
// One heartbeat loop per process renews every lease and fleet slot in one
// pipeline and keeps JetStream's ack deadlines alive (heartbeat.go). MFA
// challenges wait for the end user's answer with the process slot freed
// (session_login.go); so does a password the provider refused, which the
// session asks for again (a credentials challenge) up to
// Config.PasswordTries before it fails the link (config.go has every
// setting and its default). A debug link's session records a trace of its
// steps (times, attempts, codes, provider request ids; never a secret). A
// message that cannot be processed goes to the dead-letter stream with why
// (deadletter.go). The Sweeper ends links whose expiry
// passed and prunes the link indexes (sweeper.go).
package workflow
