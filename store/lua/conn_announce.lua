-- Records the connection.healthy event of a connection a link's write made
-- healthy again ('repairedBy', conn_write.lua), in the connection's shard:
-- its record and its message in the shard's outbox, and forgets
-- 'repairedBy'. The body was built from the connection at version ARGV[2]:
-- a connection changed since is read again ('changed'). One no longer
-- healthy (a refresh failed since, with its own connection.error; or
-- revoked) records nothing. Another link's repair, or none, is 'done'.
-- KEYS: 1 connection, 2 outbox, 3 outbox messages, 4 event record
-- ARGV: 1 link id, 2 version read, 3 now ms, 4 event id, 5 event type,
--       6 event body, 7 event record ttl ms, 8 the event's message
-- Returns 'ok', 'changed' or 'done'.
--#include conn_event
local c = redis.call('HMGET', KEYS[1], 'repairedBy', 'version', 'status', 'webhookUrl', 'org')
if c[1] ~= ARGV[1] then return 'done' end
if c[2] ~= ARGV[2] then return 'changed' end
redis.call('HDEL', KEYS[1], 'repairedBy')
if c[3] ~= 'healthy' then return 'done' end
conn_event(KEYS[4], KEYS[2], KEYS[3], c[5], c[4], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[3], ARGV[8])
return 'ok'
