-- Asks for one more attempt of a delivery now (a manual redelivery or a
-- replay). A delivery still in its schedule just moves its next attempt to
-- now, without using up a retry; a finished one makes a single extra attempt
-- and, if that fails, returns to the status it had.
-- The delivery goes first in the retry schedule in the same step: a
-- delivery made pending but left out of the schedule would never be tried,
-- nor replayed (it is no longer failed).
-- KEYS: 1 delivery state, 2 organization's failed set, 3 retry schedule
-- ARGV: 1 trigger, 2 now ms, 3 ttl ms, 4 event id, 5 '1' to resend only a
--       failed delivery (bulk replay), 6 organization, 7 schedule member
local cur = redis.call('HMGET', KEYS[1], 'status', 'org')
local st = cur[1]
if not st or cur[2] ~= ARGV[6] then return {'missing'} end
if st == 'no_target' then return {'no_target'} end
if ARGV[5] == '1' and st ~= 'failed' then return {'skipped', st} end
if st ~= 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'pending', 'once', '1', 'onceFrom', st)
  redis.call('ZREM', KEYS[2], ARGV[4])
end
redis.call('HSET', KEYS[1], 'trigger', ARGV[1], 'nextAt', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'version', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[3], 'LT', ARGV[2], ARGV[7])
return {'ok', redis.call('HGETALL', KEYS[1])}
