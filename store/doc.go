// Package store keeps linkflow's state in Redis: organizations and their keys,
// links and their lifecycle, connections, the event outbox, webhook delivery
// state, rate limits and idempotency records.
//
// Every key is built in keys.go. Everything that belongs to one organization
// shares the hash tag {orgId}, so each atomic step (a Lua script) touches keys
// of one slot and works on Redis Cluster; an organization lives on one shard.
// Secrets are sealed with AES-256-GCM (seal.go) before they reach Redis.
package store
