-- Applies a finished link's write to its connection, in the connection's
-- shard, once: a write already applied (the connection's last link is this
-- one), or older than the connection's last (a later link renewed it
-- first), changes nothing.
-- KEYS: 1 connection, 2 connection's links, 3 the organization's connections
--       index (its part in this shard), 4 (optional, a single Redis only: a
--       script there may touch keys of any shard) the link whose write it
--       is: applied only while the link keeps it, and forgotten in the same
--       step ('none' when the link keeps none)
-- ARGV: 1 link id, 2 finished at ms, 3 n pairs, 4 n set-once pairs,
--       5 how many link ids the connection lists, 6.. the pairs, then the
--       set-once pairs
if KEYS[4] and not redis.call('HGET', KEYS[4], 'connIntent') then return 'none' end
local function settle(r)
  if KEYS[4] then redis.call('HDEL', KEYS[4], 'connIntent') end
  return r
end
local c = redis.call('HMGET', KEYS[1], 'lastLinkId', 'lastFinishedAt', 'firstLinkId', 'id')
if c[1] == ARGV[1] then return settle('applied') end
if c[2] and tonumber(c[2]) > tonumber(ARGV[2]) then return settle('stale') end
local np, no = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('HSET', KEYS[1], unpack(ARGV, 6, 5 + 2 * np))
for j = 6 + 2 * np, 5 + 2 * np + 2 * no, 2 do redis.call('HSETNX', KEYS[1], ARGV[j], ARGV[j + 1]) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
if not c[3] then
  -- A new connection: listed in the order of the links that made them.
  redis.call('HSET', KEYS[1], 'firstLinkId', ARGV[1])
  redis.call('ZADD', KEYS[3], 0, ARGV[1] .. ':' .. redis.call('HGET', KEYS[1], 'id'))
end
return settle('ok')
