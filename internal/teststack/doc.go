// Package teststack runs a whole linkflow in a test process (API, worker,
// sweeper, dispatcher, sandbox) against a real redis-server and an embedded
// JetStream, for end-to-end tests over HTTP.
package teststack
