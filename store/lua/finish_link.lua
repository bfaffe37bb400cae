-- Ends a link in one atomic step: its final fields, the completion event
-- (its record, its place in the organization's event log, its message in the
-- outbox), and for a successful link the connection it made or renewed.
-- Secrets the link held are deleted. Fenced by the worker's lease token
-- ('lease') or the version the caller read ('version'). The link's index
-- entries go when its retention ends (retention schedule).
-- KEYS: 1 link, 2 lease, 3 password, 4 input, 5 events, 6 outbox,
--       7 expiring set, 8 connections by account, 9 connection,
--       10 connection's links, 11 connections index, 12 retention schedule,
--       13 outbox messages, 14 event record
-- ARGV: 1 fence kind, 2 fence value, 3 now ms, 4 link id, 5 retention ms,
--       6 event id, 7 event type, 8 webhook url, 9 event body, 10 event MINID,
--       11 connection id ('' for none), 12 connection account field,
--       13 n link pairs, 14 n connection pairs, 15 n connection set-once pairs,
--       16 event record ttl ms, 17 the event's message, 18.. the pairs in
--       that order
if ARGV[1] == 'lease' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then return {'fenced'} end
else
  local v = redis.call('HMGET', KEYS[1], 'version', 'status')
  if v[1] ~= ARGV[2] then return {'fenced'} end
end
local conn = ARGV[11]
if conn ~= '' then
  local existing = redis.call('HGET', KEYS[8], ARGV[12])
  if existing and existing ~= conn then return {'connection_moved', existing} end
end
local nl, nc, nco = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local i = 18
redis.call('HSET', KEYS[1], unpack(ARGV, i, i + 2 * nl - 1))
i = i + 2 * nl
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HDEL', KEYS[1], 'args', 'claimCode', 'challenge', 'cancel')
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[7], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local idx = redis.call('HMGET', KEYS[1], 'integration', 'externalUserId')
redis.call('ZADD', KEYS[12], tonumber(ARGV[3]) + tonumber(ARGV[5]),
  ARGV[4] .. '\0' .. (idx[1] or '') .. '\0' .. (idx[2] or ''))
if conn ~= '' then
  if nc > 0 then redis.call('HSET', KEYS[9], unpack(ARGV, i, i + 2 * nc - 1)) end
  i = i + 2 * nc
  for j = i, i + 2 * nco - 1, 2 do redis.call('HSETNX', KEYS[9], ARGV[j], ARGV[j + 1]) end
  redis.call('HINCRBY', KEYS[9], 'version', 1)
  redis.call('HSET', KEYS[8], ARGV[12], conn)
  redis.call('RPUSH', KEYS[10], ARGV[4])
  redis.call('LTRIM', KEYS[10], -100, -1) -- store.ConnectionLinkIDs
  redis.call('ZADD', KEYS[11], 0, conn)
end
local sid = redis.call('XADD', KEYS[5], 'MINID', '~', ARGV[10], '*', 'id', ARGV[6])
redis.call('HSET', KEYS[14], 'type', ARGV[7], 'link', ARGV[4], 'url', ARGV[8], 'body', ARGV[9], 'stream', sid)
redis.call('PEXPIRE', KEYS[14], ARGV[16])
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[6])
redis.call('HSET', KEYS[13], ARGV[6], ARGV[17])
return {'ok', sid}
