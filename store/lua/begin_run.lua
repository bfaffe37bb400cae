-- Starts a session attempt for a claimed link: takes the lease (unless another
-- worker holds it), counts the attempt, marks the link running, and returns
-- everything the worker needs in one round trip.
-- A worker has the claimed message, so its outbox entry goes. The link
-- names its holder ('holder'): renew_lease.lua takes back a lease that
-- lapsed only while no other session began.
-- KEYS: 1 link, 2 lease, 3 password, 4 outbox, 5 outbox messages
-- ARGV: 1 lease token, 2 lease ttl ms, 3 now ms, 4 claimed message id
-- Returns {verdict, ...}: 'gone' | 'done' status | 'not_claimed' |
-- 'busy' pttl | 'ok' fields password
-- A full Redis (maxmemory under noeviction) refuses a script's first write
-- that may grow memory, and after any first write lets every later one
-- through: so on the path that starts an attempt the lease's SET comes
-- first, and a full Redis refuses the whole start (the worker hands the
-- message back as while Redis is down) rather than counting an attempt
-- whose commit it would then refuse.
local c = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'version')
local st = c[1]
if not st then return {'gone'} end
local function dropEntry()
  redis.call('ZREM', KEYS[4], ARGV[4])
  redis.call('HDEL', KEYS[5], ARGV[4])
end
if st == 'succeeded' or st == 'failed' or st == 'expired' or st == 'canceled' then
  dropEntry()
  return {'done', st}
end
if st == 'pending' then
  dropEntry()
  return {'not_claimed'}
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then
  dropEntry()
  return {'busy', tostring(redis.call('PTTL', KEYS[2]))}
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
dropEntry()
local attempts = string.format('%d', (tonumber(c[2]) or 0) + 1)
local version = string.format('%d', (tonumber(c[3]) or 0) + 1)
if st == 'claimed' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', ARGV[3], 'attempts', attempts, 'version', version, 'holder', ARGV[1])
elseif st == 'awaiting_input' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'attempts', attempts, 'version', version, 'holder', ARGV[1])
  redis.call('HDEL', KEYS[1], 'challenge')
else
  redis.call('HSET', KEYS[1], 'attempts', attempts, 'version', version, 'holder', ARGV[1])
end
local fields = redis.call('HGETALL', KEYS[1])
return {'ok', fields, redis.call('GET', KEYS[3]) or ''}
