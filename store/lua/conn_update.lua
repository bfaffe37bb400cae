-- Applies a customer's change (metadata, displayName, disabled) to a
-- connection that exists and is not revoked, in one step.
-- KEYS: 1 connection
-- ARGV: 1 now ms, 2.. field value pairs
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return 'missing' end
if st == 'revoked' then return 'revoked' end
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], 'updatedAt', ARGV[1], unpack(ARGV, 2))
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return 'ok'
