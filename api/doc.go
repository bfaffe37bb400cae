// Package api is linkflow's HTTP ingress: the customer's API (links,
// providers, connections, deliveries, events, debug traces; authenticated by
// API key or access token), the end user's endpoints (claim, session, input,
// decline; authenticated by the claim code), the hosted link page, and the
// operator's read-only page (authenticated by the operator key;
// operator.go).
//
// It is the only package that maps errors to HTTP statuses and the error
// envelope {"meta": {"request_id"}, "error": {"code", "message", "detail"}}.
package api
