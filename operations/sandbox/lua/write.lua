-- Applies a sandbox write once per idempotency key: the first call records
-- the result among the account's items and in its write log; a repeated key
-- returns the first record and changes nothing.
-- KEYS: 1 idempotency record, 2 items of the resource, 3 write log
-- ARGV: 1 record JSON, 2 item JSON, 3 retention ms, 4 items kept, 5 log entries kept
local first = redis.call('GET', KEYS[1])
if first then return {1, first} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[5]), -1)
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return {0, ARGV[1]}
