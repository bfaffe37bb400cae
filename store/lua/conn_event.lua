-- conn_event records an event of a connection in the connection's shard:
-- its record (no link; the connection's organization and webhook URL),
-- kept ttl ms, and its message in the shard's outbox, due now.
-- rec, ob, msgs: the event record, the shard's outbox and its messages.
local function conn_event(rec, ob, msgs, org, url, id, typ, body, ttl, now, message)
  redis.call('HSET', rec, 'org', org or '', 'type', typ, 'link', '', 'url', url or '', 'body', body)
  redis.call('PEXPIRE', rec, ttl)
  redis.call('ZADD', ob, now, id)
  redis.call('HSET', msgs, id, message)
end
