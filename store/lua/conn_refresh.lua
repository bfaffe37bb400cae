-- Commits the outcome of a credentials refresh and releases the lock, fenced
-- by the lock's token: a refresher whose lock expired cannot overwrite. A
-- connection renewed by a link since the refresh began (another lastLinkId)
-- or revoked meanwhile keeps what it has. A change between healthy and error
-- records its event (its record and its message in the shard's outbox) in
-- the same step. Its body was built from the connection at version ARGV[11]:
-- when an event is due, one changed since (a PATCH during the provider's
-- call) is 'changed', the lock kept and nothing written, for the caller to
-- build the body again.
-- KEYS: 1 connection, 2 lock, 3 outbox, 4 outbox messages, 5 event record
-- ARGV: 1 fencing token, 2 lastLinkId seen under the lock, 3 outcome ('ok' or
--       'error'), 4 now ms, 5 sealed credentials ('ok') or status message
--       ('error'), 6 event id, 7 event type, 8 event body,
--       9 event record ttl ms, 10 the event's message, 11 the version the
--       body was built from ('' for any)
--#include conn_event
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
local c = redis.call('HMGET', KEYS[1], 'id', 'status', 'lastLinkId', 'webhookUrl', 'org', 'version')
local prev, next = c[2], 'error'
if ARGV[3] == 'ok' then next = 'healthy' end
local current = c[1] and prev ~= 'revoked' and (c[3] or '') == ARGV[2]
local event = current and prev ~= next and (prev == 'error' or next == 'error')
if event and ARGV[11] ~= '' and c[6] ~= ARGV[11] then return {'changed'} end
redis.call('DEL', KEYS[2])
if not c[1] then return {'missing'} end
if prev == 'revoked' then return {'revoked'} end
if not current then return {'superseded'} end
if next == 'healthy' then
  redis.call('HSET', KEYS[1], 'credentials', ARGV[5], 'status', next, 'statusMessage', '',
    'lastRefreshedAt', ARGV[4], 'updatedAt', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'status', next, 'statusMessage', ARGV[5], 'updatedAt', ARGV[4])
end
redis.call('HINCRBY', KEYS[1], 'refreshes', '1')
redis.call('HINCRBY', KEYS[1], 'version', '1')
if not event then return {'ok', '0'} end
-- This change's event follows any a link's repair has not recorded yet:
-- that one would come after it, out of order, or twice.
redis.call('HDEL', KEYS[1], 'repairedBy')
conn_event(KEYS[5], KEYS[3], KEYS[4], c[5], c[4], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[4], ARGV[10])
return {'ok', '1'}
