-- Commits the outcome of a credentials refresh and releases the lock, fenced
-- by the lock's token: a refresher whose lock expired cannot overwrite. A
-- connection renewed by a link since the refresh began (another lastLinkId)
-- or revoked meanwhile keeps what it has. A change between healthy and error
-- writes its event to the organization's event log and outbox in the same
-- step.
-- KEYS: 1 connection, 2 lock, 3 events, 4 outbox, 5 outbox messages,
--       6 event record
-- ARGV: 1 fencing token, 2 lastLinkId seen under the lock, 3 outcome ('ok' or
--       'error'), 4 now ms, 5 sealed credentials ('ok') or status message
--       ('error'), 6 event id, 7 event type, 8 event body, 9 event MINID,
--       10 event record ttl ms, 11 the event's message
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
redis.call('DEL', KEYS[2])
local c = redis.call('HMGET', KEYS[1], 'id', 'status', 'lastLinkId', 'webhookUrl')
if not c[1] then return {'missing'} end
if c[2] == 'revoked' then return {'revoked'} end
if (c[3] or '') ~= ARGV[2] then return {'superseded'} end
local prev, next = c[2], 'error'
if ARGV[3] == 'ok' then
  next = 'healthy'
  redis.call('HSET', KEYS[1], 'credentials', ARGV[5], 'status', next, 'statusMessage', '',
    'lastRefreshedAt', ARGV[4], 'updatedAt', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'status', next, 'statusMessage', ARGV[5], 'updatedAt', ARGV[4])
end
redis.call('HINCRBY', KEYS[1], 'refreshes', 1)
redis.call('HINCRBY', KEYS[1], 'version', 1)
local sid = ''
if prev ~= next and (prev == 'error' or next == 'error') then
  sid = redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[9], '*', 'id', ARGV[6])
  redis.call('HSET', KEYS[6], 'type', ARGV[7], 'link', '', 'url', c[4] or '', 'body', ARGV[8], 'stream', sid)
  redis.call('PEXPIRE', KEYS[6], ARGV[10])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[6])
  redis.call('HSET', KEYS[5], ARGV[6], ARGV[11])
end
return {'ok', sid}
