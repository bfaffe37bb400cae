-- Turns a connection into a tombstone and releases the lock, fenced by the
-- lock's token: the sealed credentials go, the record stays with status
-- revoked.
-- A link that renewed the connection since the lock was taken (another
-- lastLinkId) brought credentials the provider was not asked to revoke:
-- 'superseded', and the caller starts over.
-- KEYS: 1 connection, 2 lock
-- ARGV: 1 fencing token, 2 now ms, 3 revoked at the provider ('1' or '0'),
--       4 status message, 5 lastLinkId seen under the lock
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'fenced' end
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if (redis.call('HGET', KEYS[1], 'lastLinkId') or '') ~= ARGV[5] then return 'superseded' end
redis.call('HDEL', KEYS[1], 'credentials', 'repairedBy')
redis.call('HSET', KEYS[1], 'status', 'revoked', 'statusMessage', ARGV[4], 'revokedAt', ARGV[2],
  'revokedAtProvider', ARGV[3], 'updatedAt', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'version', '1')
return 'ok'
