-- Ends a link in one atomic step in its shard: its final fields, the
-- completion event (its record and its message in the shard's outbox), and
-- for a successful link the write of its connection. On a single Redis the
-- write is made here (KEYS 11-13 given: a script there may touch keys of
-- any shard); on a Cluster the connection lives in its account's shard, so
-- the link keeps the write as an intent (a 'connIntent' pair among its
-- fields), applied to that shard next, and readers see the link running
-- until then. Secrets the link held are deleted. Fenced by the worker's
-- lease token ('lease') or the version the caller read ('version'); a link
-- that already ended is left alone ('done'). A session's finish names it
-- ('endedBy'), for its own retry after a lost reply. The link's entry in
-- the retention schedule moves to the end of its retention, when its index
-- entries go. Returns {'ok'}, with the connection write's answer second
-- when it was made here.
-- KEYS: 1 link, 2 lease, 3 password, 4 input, 5 outbox, 6 outbox messages,
--       7 expiring set, 8 retention schedule, 9 event record, 10 debug trace,
--       11-13 (optional) the connection's keys as conn_write takes them
-- ARGV: 1 fence kind, 2 fence value, 3 now ms, 4 link id, 5 retention ms,
--       6 event id, 7 event type, 8 webhook url, 9 event body, or its part
--       before the link's result, 10 '' or the part after the result (the
--       record then keeps the parts, and event_body.lua puts the link's
--       result between them), 11 event record ttl ms, 12 the event's
--       message, 13 n link pairs, 14.. link field/value pairs, then (with
--       KEYS 11-13) the connection write's arguments as conn_write takes them
--#include conn_write
--#include retention_member
local v = redis.call('HMGET', KEYS[1], 'version', 'status', 'org', 'integration', 'externalUserId', 'debug')
if not v[2] then return {'fenced'} end
if v[2] == 'succeeded' or v[2] == 'failed' or v[2] == 'canceled' or v[2] == 'expired' then
  -- Ended by this very caller ('mine': its reply was lost and it asks
  -- again): the session whose lease ended it, named by 'endedBy'; with
  -- the connection's write still waiting in the link (a Cluster), if any.
  if ARGV[1] == 'lease' and redis.call('HGET', KEYS[1], 'endedBy') == ARGV[2] then
    return {'done', v[2], 'mine', redis.call('HGET', KEYS[1], 'connIntent') or ''}
  end
  return {'done', v[2]}
end
if ARGV[1] == 'lease' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then return {'fenced'} end
elseif v[1] ~= ARGV[2] then
  return {'fenced'}
end
local last = 13 + 2 * tonumber(ARGV[13])
local endedBy = ''
if ARGV[1] == 'lease' then endedBy = ARGV[2] end
redis.call('HSET', KEYS[1], 'version', string.format('%d', (tonumber(v[1]) or 0) + 1), 'endedBy', endedBy,
  unpack(ARGV, 14, last))
redis.call('HDEL', KEYS[1], 'args', 'claimCode', 'challenge', 'answered', 'closed', 'cancel', 'claimMessage', 'holder')
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[7], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
-- Only a debug link has a trace.
if v[6] == '1' then redis.call('PEXPIRE', KEYS[10], ARGV[5]) end
redis.call('ZADD', KEYS[8], string.format('%d', tonumber(ARGV[3]) + tonumber(ARGV[5])),
  retention_member(ARGV[4], v[3], v[4], v[5]))
if ARGV[10] == '' then
  redis.call('HSET', KEYS[9], 'org', v[3] or '', 'type', ARGV[7], 'link', ARGV[4], 'url', ARGV[8], 'body', ARGV[9])
else
  redis.call('HSET', KEYS[9], 'org', v[3] or '', 'type', ARGV[7], 'link', ARGV[4], 'url', ARGV[8],
    'head', ARGV[9], 'tail', ARGV[10])
end
redis.call('PEXPIRE', KEYS[9], ARGV[11])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[6])
redis.call('HSET', KEYS[6], ARGV[6], ARGV[12])
if KEYS[11] then return {'ok', conn_write(KEYS[11], KEYS[12], KEYS[13], ARGV, last + 1)} end
return {'ok'}
