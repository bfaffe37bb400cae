-- Updates a link under a fence: the caller's lease token ('lease') or the
-- version it read ('version'). Optionally releases the lease.
-- KEYS: 1 link, 2 lease
-- ARGV: 1 fence kind, 2 fence value, 3 '1' to release the lease,
--       4 attempts delta, 5 number of field/value pairs n, 6.. n pairs,
--       then names of fields to delete
if ARGV[1] == 'lease' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 'fenced' end
else
  if redis.call('HGET', KEYS[1], 'version') ~= ARGV[2] then return 'fenced' end
end
local n = tonumber(ARGV[5])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 6, 5 + 2 * n)) end
if #ARGV > 5 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 6 + 2 * n)) end
if ARGV[4] ~= '0' then redis.call('HINCRBY', KEYS[1], 'attempts', ARGV[4]) end
redis.call('HINCRBY', KEYS[1], 'version', '1')
if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
return 'ok'
