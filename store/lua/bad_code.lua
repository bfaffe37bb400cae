-- Counts a wrong claim code given for a link, on any endpoint that takes
-- one, unless the link already refuses wrong codes for a while.
-- KEYS: 1 wrong-code counter
-- ARGV: 1 wrong-code limit, 2 window ms
-- Returns {'locked', pttl} or {'counted'}.
local bad = tonumber(redis.call('GET', KEYS[1]) or '0')
if bad >= tonumber(ARGV[1]) then return {'locked', tostring(redis.call('PTTL', KEYS[1]))} end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {'counted'}
