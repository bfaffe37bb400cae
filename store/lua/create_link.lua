-- Creates a link and its index entries in one step, or replays the first
-- response of an idempotent request.
-- The link's record lives at most until its retention ends after the latest
-- it can finish; the retention schedule removes its index entries then.
-- KEYS: 1 link, 2 links index, 3 by-integration index, 4 by-user index,
--       5 expiring set, 6 idempotency record, 7 retention schedule
-- ARGV: 1 request hash ('' without Idempotency-Key), 2 response, 3 idempotency
--       ttl ms, 4 link id, 5 expiresAt ms, 6 '1' when by-user index applies,
--       7 latest end of retention ms, 8 retention schedule member,
--       9 record ttl ms, 10.. link field/value pairs
if ARGV[1] ~= '' then
  local prev = redis.call('HMGET', KEYS[6], 'hash', 'response')
  if prev[1] then
    if prev[1] ~= ARGV[1] then return {'conflict'} end
    return {'replay', prev[2]}
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('ZADD', KEYS[2], '0', ARGV[4])
redis.call('ZADD', KEYS[3], '0', ARGV[4])
if ARGV[6] == '1' then redis.call('ZADD', KEYS[4], '0', ARGV[4]) end
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[7], ARGV[7], ARGV[8])
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[6], 'hash', ARGV[1], 'response', ARGV[2])
  redis.call('PEXPIRE', KEYS[6], ARGV[3])
end
return {'created'}
