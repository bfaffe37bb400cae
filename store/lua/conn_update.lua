-- Applies a customer's change (metadata, displayName, disabled) to a
-- connection that exists and is not revoked, in one step.
-- KEYS: 1 connection
-- ARGV: 1 now ms, 2 organization, 3.. field value pairs
local c = redis.call('HMGET', KEYS[1], 'status', 'org')
local st = c[1]
if not st or c[2] ~= ARGV[2] then return 'missing' end
if st == 'revoked' then return 'revoked' end
if #ARGV > 2 then
  redis.call('HSET', KEYS[1], 'updatedAt', ARGV[1], unpack(ARGV, 3))
  redis.call('HINCRBY', KEYS[1], 'version', '1')
end
return 'ok'
