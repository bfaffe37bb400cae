// Package store keeps linkflow's state in Redis, and nothing else:
// organizations and their keys, links and their lifecycle, connections, the
// outbox of messages for JetStream, webhook delivery state, rate limits and
// idempotency records. Every key is built in keys.go; every atomic step is a
// Lua script in lua/ (script.go runs them, in pipelines too); secrets are
// sealed with AES-256-GCM (seal.go) before they reach Redis.
//
// # Layout
//
// The work is spread over Shards (64) shards. A shard is one hash tag, so
// one Redis Cluster slot, and the 64 tags are placed evenly over the slot
// space (shard.go): a cluster whose masters hold even slot ranges holds even
// numbers of shards, so one organization's links spread over every master
// (up to 64 of them). Before this layout every key carried the
// organization's tag, and an organization lived on one master.
//
// What lives where, and why:
//
//   - A link and what hangs off it (its password, a challenge's answer, its
//     lease, its wrong-code counter, its webhook attempt log, a debug
//     link's trace) live in the shard its id names: ids linkflow makes end
//     in two hex digits that name their shard. Every step of a link
//     (create, claim, begin, commit) is one script in that shard. A link
//     created with an Idempotency-Key lives in the shard the key hashes to,
//     where the key's record is, so the record and the link are still made
//     in one step.
//   - An event's record (its webhook body, by id) and its delivery state
//     live in the shard of the record it is about: a link event's id is
//     derived from the link's, a connection event's ends as the
//     connection's. So a link's commit writes its status, result, event
//     record and outbox entry in one step, as before. A successful link's
//     result is stored once, in the link: its event's record keeps the
//     body's parts before and after it, and every reader puts the three
//     together in the same script (event_body.lua). A record keeps the
//     body whole for a failure, a result left out for size, or when links
//     are kept for less time than events.
//   - Per shard: the outbox (message ids by due time, messages by id), the
//     expiry schedule of pending links, the retention schedule of every
//     link (where its index entries go; a claimed link's entry is at its
//     deadline plus a grace until it ends, so the sweeper finds the claimed
//     links nothing ended without a schedule of their own), and the webhook
//     retry schedule. Sweepers, relays and
//     dispatchers read every shard's part in one pipeline.
//   - Per organization and shard: the link indexes (all, by integration, by
//     external user), the connections index and the failed deliveries. A
//     listing reads the organization's part in every shard and merges them
//     (list.go): one pipeline of 64 small range reads per page, the price of
//     spreading one organization.
//   - A connection lives in its account's shard: its id derives from the
//     organization, integration and username, so a link knows its
//     connection without reading it, and the same account always has the
//     same connection. A link's connection is in another shard than the
//     link, so its commit cannot write it: the commit records the write in
//     the link (the intent), and the next step applies it to the connection
//     (conn_apply.lua: once, and never over a later link's write) and then
//     lets the event out. Until then the link reads as running, so nobody
//     sees a connection id before the connection, and the event (the
//     webhook) is published only after. A process that stops between the
//     two steps leaves the intent; the relay applies it before it publishes
//     the event (DueOutbox). The guarantee that no partial outcome is ever
//     visible holds: the link, its result and its connection appear
//     together. On a single Redis (not a Cluster), where a script may
//     touch keys of any shard, there is no intent and no next step: the
//     commit writes the connection itself (finish_link.lua and
//     conn_apply.lua share conn_write.lua, through an --#include line the
//     luascript package expands).
//   - Organizations, API keys, users and tokens, rate-limit buckets, fleet
//     slots per integration and the sweepers' lock are small and keyed by
//     their own names.
//
// The ordered event feed (GET /v1/events) is not kept here any more: the
// events stream in JetStream holds every event in order for the event
// retention (package outbox, Feed), and its stream sequence is the feed's
// cursor. The records here hold the bodies (the feed carries ids only) and
// the sequence each event was first stored at, which leaves out a copy
// published again after JetStream's duplicate window.
//
// Config.Prefix (default "lf:") starts every key, so several deployments or
// tests can share one Redis.
package store
