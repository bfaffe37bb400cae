// Package linkflow holds the vocabulary every part of linkflow shares: links
// and their lifecycle, operations, events and their messages, connections,
// organizations, principals and scopes, run verdicts and leases, webhook
// deliveries and their states, why a link failed (FailureCode), and the
// sentinel and typed errors the layers answer with.
//
// The service is split by job, in the order a link travels: api is the HTTP
// ingress; store keeps all state in Redis; outbox carries messages from
// Redis to NATS JetStream; workflow runs claimed links with the
// integrations of operations; webhooks delivers completion events;
// connections refreshes and revokes what successful links leave.
// cmd/linkflow wires them together. Only api turns errors into HTTP
// statuses and the error envelope (Error and its codes).
package linkflow
