-- Takes a connection's lock (refresh or revoke) when nobody holds it, with
-- the caller's random fencing token (not a counter: a counter kept in Redis
-- can hand the same token out twice after a failover or a restart that lost
-- its last increments), and returns the connection as it is under the
-- lock; when another holds it, how many refreshes the connection committed
-- (what a waiting reader watches).
-- KEYS: 1 connection, 2 lock, 3 connection's links
-- ARGV: 1 lock ttl ms, 2 how many link ids to return, 3 organization, 4 token
if redis.call('HGET', KEYS[1], 'org') ~= ARGV[3] then return {'missing'} end
local pttl = redis.call('PTTL', KEYS[2])
if pttl ~= -2 then return {'busy', redis.call('HGET', KEYS[1], 'refreshes') or '0'} end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[1])
redis.call('HDEL', KEYS[1], 'lockFence') -- the counter earlier releases kept
return {'ok', ARGV[4], redis.call('HGETALL', KEYS[1]),
  redis.call('LRANGE', KEYS[3], '-' .. ARGV[2], '-1')}
