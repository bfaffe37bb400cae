// Package linkflow holds the domain types that every part of linkflow shares:
// links and their lifecycle, operations, events, and the error type whose codes
// the HTTP layer maps to statuses.
//
// The service itself is split by job: api is the HTTP ingress, store wraps Redis,
// workflow runs claimed links, operations holds the integrations, and webhooks
// delivers completion events. cmd/linkflow wires them together.
package linkflow
