-- Reads the pending answer to a link's challenge, for the holder of the
-- link's lease only: a worker that lost its lease and has not noticed yet
-- must not act on the answer to the challenge of the worker that runs the
-- link now. The answer stays until the worker asks again or moves on (its
-- update_link drops it): a read whose reply is lost on the way loses
-- nothing, the worker reads again.
-- KEYS: 1 answer, 2 lease
-- ARGV: 1 lease token
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
local v = redis.call('GET', KEYS[1])
if not v then return {'none'} end
return {'ok', v}
