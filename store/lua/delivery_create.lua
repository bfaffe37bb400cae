-- Creates an event's webhook delivery state unless it exists: a redelivered
-- JetStream message must not restart the schedule.
-- KEYS: 1 delivery state
-- ARGV: 1 now ms, 2 ttl ms, 3 status, 4 first attempt at ms, 5.. field pairs
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'attempts', 0, 'step', 0, 'version', 1,
  'trigger', 'initial', 'nextAt', ARGV[4], 'createdAt', ARGV[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'created', redis.call('HGETALL', KEYS[1])}
