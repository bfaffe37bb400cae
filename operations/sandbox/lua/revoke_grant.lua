-- Revokes a sandbox grant when the caller presents one of its current tokens.
-- Revoking twice keeps the first time.
-- KEYS: 1 grant
-- ARGV: 1 presented token hash, 2 now ms
local g = redis.call('HMGET', KEYS[1], 'access', 'refresh', 'status')
if not g[1] then return 0 end
if g[1] ~= ARGV[1] and g[2] ~= ARGV[1] then return 0 end
if g[3] ~= 'revoked' then redis.call('HSET', KEYS[1], 'status', 'revoked', 'revokedAt', ARGV[2]) end
return 1
