-- Replaces a sealed value only if it did not change since it was read.
-- KEYS: 1 the key
-- ARGV: 1 hash field ('' for a string key), 2 old value, 3 new value
if ARGV[1] == '' then
  if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
  redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
  return 1
end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
