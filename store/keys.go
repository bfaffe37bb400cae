package store

// Every Redis key linkflow uses is built here. Keys of one organization carry
// the hash tag {orgId} so that a Lua script touching a link, its lease, the
// organization's event stream and a connection stays in one cluster slot.

const prefix = "lf:"

func orgPrefix(org string) string { return prefix + "{" + org + "}:" }

// Organizations and credentials for the API.
func orgsKey() string                   { return prefix + "orgs" }
func orgKey(org string) string          { return orgPrefix(org) + "org" }
func orgAPIKeysKey(org string) string   { return orgPrefix(org) + "apikeys" }
func apiKeyKey(hash string) string      { return prefix + "apikey:" + hash }
func accessTokenKey(hash string) string { return prefix + "token:" + hash }
func userKey(email string) string       { return prefix + "user:" + email }

// Links.
func linkOrgKey(linkID string) string            { return prefix + "linkorg:" + linkID }
func linkKey(org, id string) string              { return orgPrefix(org) + "link:" + id }
func linkCredKey(org, id string) string          { return orgPrefix(org) + "link:" + id + ":cred" }
func linkInputKey(org, id string) string         { return orgPrefix(org) + "link:" + id + ":input" }
func linkLeaseKey(org, id string) string         { return orgPrefix(org) + "link:" + id + ":lease" }
func linkBadCodeKey(org, id string) string       { return orgPrefix(org) + "link:" + id + ":badcode" }
func linkDeliveriesKey(org, id string) string    { return orgPrefix(org) + "link:" + id + ":deliveries" }
func linksIndexKey(org string) string            { return orgPrefix(org) + "links" }
func linksByIntegrationKey(org, i string) string { return orgPrefix(org) + "links:integration:" + i }
func linksByUserKey(org, u string) string        { return orgPrefix(org) + "links:user:" + u }
func expiringKey(org string) string              { return orgPrefix(org) + "expiring" }
func linksRetentionKey(org string) string        { return orgPrefix(org) + "links:retention" }

// retentionMember names a link in its organization's retention schedule,
// with what its index entries need to be found again once the link is gone.
func retentionMember(id, integration, externalUserID string) string {
	return id + "\x00" + integration + "\x00" + externalUserID
}
func idempotencyKey(org, hash string) string { return orgPrefix(org) + "idem:" + hash }

// Events: the organization's ordered event log, each event's record (its
// webhook body), and the outbox of messages that must still reach JetStream
// (due times, and the messages by id).
func eventsKey(org string) string         { return orgPrefix(org) + "events" }
func eventKey(org, eventID string) string { return orgPrefix(org) + "evt:" + eventID }
func outboxKey(org string) string         { return orgPrefix(org) + "outbox" }
func outboxMessagesKey(org string) string { return orgPrefix(org) + "outbox:msgs" }

// Connections.
func connKey(org, id string) string                        { return orgPrefix(org) + "conn:" + id }
func connLinksKey(org, id string) string                   { return orgPrefix(org) + "conn:" + id + ":links" }
func connReadsKey(org, id string) string                   { return orgPrefix(org) + "conn:" + id + ":reads" }
func connLockKey(org, id string) string                    { return orgPrefix(org) + "conn:" + id + ":lock" }
func connIndexKey(org string) string                       { return orgPrefix(org) + "conns" }
func connByAccountKey(org string) string                   { return orgPrefix(org) + "conns:account" }
func connAccountField(integration, username string) string { return integration + "\x00" + username }

// Webhook delivery state.
func deliveryKey(org, eventID string) string { return orgPrefix(org) + "wh:" + eventID }
func failedDeliveriesKey(org string) string  { return orgPrefix(org) + "wh:failed" }
func retryScheduleKey() string               { return prefix + "{wh}:retry" }

// Coordination.
func sweepLockKey(name string) string        { return prefix + "{sched}:lock:" + name }
func rateLimitKey(name string) string        { return prefix + "rl:{" + name + "}" }
func semaphoreKey(integration string) string { return prefix + "sem:{" + integration + "}" }
