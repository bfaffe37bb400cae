-- Replaces the tokens of an active sandbox grant when the caller presents its
-- current refresh token; the old refresh token stops working.
-- KEYS: 1 grant
-- ARGV: 1 presented refresh hash, 2 new access hash, 3 new refresh hash, 4 retention ms
local g = redis.call('HMGET', KEYS[1], 'status', 'refresh')
if g[1] ~= 'active' or g[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'access', ARGV[2], 'refresh', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'refreshes', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
