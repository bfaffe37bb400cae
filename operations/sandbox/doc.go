// Package sandbox is linkflow's built-in test provider: the integrations
// tmobile, att, verizon and ubereats, with made-up but realistic accounts that
// behave like a payment provider's test mode.
//
// Magic credentials choose what a login does (see the constants UserGood,
// UserLocked, UserMFA, UserFlaky, UserSlow and PasswordGood); any other
// username logs in with PasswordGood, so tests can use a fresh account each.
// An account's data is generated from its (integration, username), so reads
// need no storage; a write is recorded in Redis once per idempotency key and
// changes what later reads return, in every process. Sessions live in the
// memory of the process that opened them, but are counted in Redis across
// processes so a test can check a fleet-wide concurrency limit. A session
// loads what writes changed in its account when its login completes and
// serves its reads from that view plus its own writes, so that a session
// costs Redis one round trip to log in, one per write and one to close.
//
// docs/sandbox.md documents the behaviour for people.
package sandbox
