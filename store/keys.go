package store

import (
	"strconv"
	"strings"
)

// Every Redis key linkflow uses is built here, and the layout is described
// in doc.go. A keyspace is a Store's keys under its prefix ("lf:" unless
// Config.Prefix says otherwise).
type keyspace struct {
	p      string
	shards []string // shard's prefixes, made once
}

func newKeyspace(prefix string) keyspace {
	k := keyspace{p: prefix, shards: make([]string, Shards)}
	for s := range Shards {
		k.shards[s] = prefix + "{" + shardTags[s] + "}:"
	}
	return k
}

// shard is the part every key of one shard starts with: the prefix and the
// shard's hash tag, so that one atomic step (a Lua script) touches keys of
// one slot.
func (k keyspace) shard(s int) string { return k.shards[s] }

// orgIn is an organization's part of a shard.
func (k keyspace) orgIn(s int, org string) string { return k.shard(s) + "o:" + org + ":" }

// Organizations, credentials for the API, coordination: small, each key on
// a slot of its own name.
func (k keyspace) orgs() string                 { return k.p + "orgs" }
func (k keyspace) org(org string) string        { return k.p + "{" + org + "}:org" }
func (k keyspace) orgAPIKeys(org string) string { return k.p + "{" + org + "}:apikeys" }
func (k keyspace) apiKey(hash string) string    { return k.p + "apikey:" + hash }
func (k keyspace) accessToken(h string) string  { return k.p + "token:" + h }
func (k keyspace) user(email string) string     { return k.p + "user:" + email }
func (k keyspace) sweepLock(name string) string { return k.p + "{sched}:lock:" + name }
func (k keyspace) rateLimit(name string) string { return k.p + "rl:{" + name + "}" }
func (k keyspace) semaphore(integ string) string {
	return k.p + "sem:{" + integ + "}"
}

// A link and what hangs off it, in the shard its id names.
func (k keyspace) link(id string) string           { return k.shard(shardOf(id)) + "link:" + id }
func (k keyspace) linkCred(id string) string       { return k.link(id) + ":cred" }
func (k keyspace) linkInput(id string) string      { return k.link(id) + ":input" }
func (k keyspace) linkLease(id string) string      { return k.link(id) + ":lease" }
func (k keyspace) linkBadCode(id string) string    { return k.link(id) + ":badcode" }
func (k keyspace) linkDeliveries(id string) string { return k.link(id) + ":deliveries" }
func (k keyspace) linkTrace(id string) string      { return k.link(id) + ":trace" }

// An organization's link indexes, one part per shard, each holding the
// links of its shard: every link, by integration, by external user.
func (k keyspace) linksIndex(s int, org string) string { return k.orgIn(s, org) + "links" }
func (k keyspace) linksByIntegration(s int, org, i string) string {
	return k.orgIn(s, org) + "links:integration:" + i
}
func (k keyspace) linksByUser(s int, org, u string) string {
	return k.orgIn(s, org) + "links:user:" + u
}

// A shard's schedules: pending links by expiry, and every link by the end
// of its retention (with what its index entries need, retentionMember),
// where a claimed link is at its deadline plus OverdueGrace until it ends.
func (k keyspace) expiring(s int) string  { return k.shard(s) + "expiring" }
func (k keyspace) retention(s int) string { return k.shard(s) + "retention" }

// retentionMember names a link in its shard's retention schedule, with what
// its index entries need to be found again once the link is gone. The
// claim and the end give the same member (lua/retention_member.lua).
func retentionMember(org, id, integration, externalUserID string) string {
	return id + "\x00" + org + "\x00" + integration + "\x00" + externalUserID
}

// parseRetentionMember is what retention schedule member m names; ok is
// false, and id m, for a member of another form (the link's id alone).
func parseRetentionMember(m string) (id, org, integration, externalUserID string, ok bool) {
	p := strings.SplitN(m, "\x00", 4)
	if len(p) != 4 {
		return m, "", "", "", false
	}
	return p[0], p[1], p[2], p[3], true
}

// An Idempotency-Key's record, in the shard its key hashes to: the link it
// created is made in the same shard (CreateLink).
func (k keyspace) idempotency(s int, org, hash string) string {
	return k.orgIn(s, org) + "idem:" + hash
}

// An event's record (its webhook body), in the shard of the record it is
// about (its id ends as that record's does), and a shard's outbox: due
// times, and the messages by id.
func (k keyspace) event(id string) string { return k.shard(shardOf(id)) + "evt:" + id }

// eventLink is the record of the link whose completion event is id
// (linkOfEvent), built in the event's shard, where that link lives; for an
// event of something else, a key that is not there. event_body.lua reads
// the link's result from it.
func (k keyspace) eventLink(id string) string {
	link, _ := linkOfEvent(id)
	return k.shard(shardOf(id)) + "link:" + link
}

func (k keyspace) outbox(s int) string         { return k.shard(s) + "outbox" }
func (k keyspace) outboxMessages(s int) string { return k.shard(s) + "outbox:msgs" }
func outboxName(s int) string                  { return strconv.Itoa(s) }
func outboxShard(name string) (int, bool) {
	n, err := strconv.Atoi(name)
	return n, err == nil && n >= 0 && n < Shards
}
func (k keyspace) conn(id string) string              { return k.shard(shardOf(id)) + "conn:" + id }
func (k keyspace) connLinks(id string) string         { return k.conn(id) + ":links" }
func (k keyspace) connReads(id string) string         { return k.conn(id) + ":reads" }
func (k keyspace) connLock(id string) string          { return k.conn(id) + ":lock" }
func (k keyspace) connIndex(s int, org string) string { return k.orgIn(s, org) + "conns" }

// Webhook delivery state, in its event's shard; an organization's failed
// deliveries and the retry schedule, per shard.
func (k keyspace) delivery(eventID string) string { return k.shard(shardOf(eventID)) + "wh:" + eventID }

// deliveryLog is the attempt log of an event that is not a link's (a
// connection's): a link's attempts are logged with the link.
func (k keyspace) deliveryLog(eventID string) string { return k.delivery(eventID) + ":log" }
func (k keyspace) failedDeliveries(s int, org string) string {
	return k.orgIn(s, org) + "wh:failed"
}
func (k keyspace) retrySchedule(s int) string { return k.shard(s) + "wh:retry" }
