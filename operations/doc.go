// Package operations is where integrations live: the contract a provider
// implements (log in once, run operations in that session, refresh and revoke
// what the session leaves behind), the typed errors the worker decides on, and
// the Registry that the API (validation, GET /v1/providers) and the worker
// (execution) both read, so the two can never disagree.
//
// Subpackages: sandbox is the built-in test provider, remote speaks the HTTP
// protocol to integrations that live in another process, and conformance is the
// test suite every integration must pass.
package operations
