// Package connections keeps connections' credentials fresh and ends them:
// the refresh and the revocation of a connection, on top of the store's
// primitives (a lock per connection, the commit of each outcome), with the
// provider called between them.
//
// One refresh per connection at a time, across every API process: a
// refresh takes the connection's lock in Redis, whose fencing token guards
// the commit. Reads that arrive meanwhile wait and share its outcome; a
// refresher whose lock expired during a slow provider call cannot overwrite
// what happened since (a link renewing the connection, a revocation). A
// failed refresh puts the connection in status error, a good one back to
// healthy; each change records its connection.* event, with its message in
// the outbox, in the same step.
package connections
