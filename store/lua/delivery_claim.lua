-- Claims due retries for one dispatcher: their scores move forward by the
-- visibility timeout, so a dispatcher that dies holding them lets them come
-- back. Returns the claimed members and the earliest remaining due time.
-- KEYS: 1 retry schedule
-- ARGV: 1 now ms, 2 limit, 3 claimed until ms
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', '0', ARGV[2])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[3], m) end
local first = redis.call('ZRANGE', KEYS[1], '0', '0', 'WITHSCORES')
return {due, first[2] or ''}
