// Package conformance is the test suite a provider of the sandbox catalog
// must pass, whether it runs in-process or behind the remote protocol. Run
// drives the provider through the sandbox's magic credentials and test
// cards: logins that succeed, fail, lock, ask an OTP or fail transiently once;
// reads whose results have the documented shapes; writes that change later
// reads, happen once per idempotency key (also when two sessions race) and
// decline the test card; refresh and revoke; close; and a slow operation that
// a cancelled context interrupts.
//
// An integration written in another language can adopt the suite by
// offering a test mode with the same magic credentials, the way payment
// providers offer test cards.
package conformance
