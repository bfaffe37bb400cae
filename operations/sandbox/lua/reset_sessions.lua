-- Sets the recorded maximum of live sandbox sessions to the live count.
-- KEYS: 1 live sessions, 2 maximum
-- ARGV: 1 now ms
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
redis.call('SET', KEYS[2], n)
return n
