-- Takes (and deletes) the pending answer to a link's challenge, for the
-- holder of the link's lease only: a worker that lost its lease and has not
-- noticed yet must not take, and throw away, the answer to the challenge of
-- the worker that runs the link now.
-- KEYS: 1 answer, 2 lease
-- ARGV: 1 lease token
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
local v = redis.call('GETDEL', KEYS[1])
if not v then return {'none'} end
return {'ok', v}
