-- Counts a sandbox session as live until its expiry, drops expired ones, and
-- raises the recorded maximum when the live count passes it.
-- KEYS: 1 live sessions (sorted set scored by expiry ms), 2 maximum
-- ARGV: 1 now ms, 2 expiry ms, 3 session id
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
