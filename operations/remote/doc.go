// Package remote lets an integration live in another process, written in any
// language, that speaks linkflow's small HTTP+JSON protocol: GET /catalog,
// and POST /login, /continue-login, /execute, /refresh, /revoke and /close.
// docs/remote-providers.md documents the protocol with examples.
//
// NewClient is the linkflow side: an operations.Provider that calls a remote
// provider. Register reads a provider's catalog and registers each of its
// integrations with a client, so linkflow needs no rebuild to gain one.
// NewHandler is the provider side for integrations written in Go: it serves
// every integration of a Registry over the protocol (the sandbox runs behind
// it in tests, and the conformance suite passes both ways).
package remote
