-- Takes a slot of a fleet-wide semaphore (a sorted set of holders scored by
-- the expiry of their hold) unless it is full. Expired holders (crashed
-- workers) are dropped first.
-- KEYS: 1 semaphore
-- ARGV: 1 holder, 2 limit, 3 now ms, 4 hold expiry ms
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  return 1
end
return 0
