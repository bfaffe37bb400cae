-- Reads the pending answer to a link's challenge, for the holder of the
-- link's lease only: a worker that lost its lease and has not noticed yet
-- must not act on the answer to the challenge of the worker that runs the
-- link now. The answer stays until the worker asks again or moves on (its
-- update_link drops it): a read whose reply is lost on the way loses
-- nothing, the worker reads again. The session's last read, at the
-- challenge's expiry, closes the challenge (ARGV[2]) in the same step:
-- an answer after it is refused as expired (submit_input.lua), not taken
-- by nobody, whatever the clocks of the API and the worker say.
-- KEYS: 1 answer, 2 lease, 3 link
-- ARGV: 1 lease token, 2 the challenge to close ('' for none)
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[3], 'closed', ARGV[2]) end
local v = redis.call('GET', KEYS[1])
if not v then return {'none'} end
return {'ok', v}
