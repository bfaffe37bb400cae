-- Moves a claimed entry of the retry schedule to a new due time, or removes
-- it, only while the caller's claim holds: the entry is still at the score
-- the caller claimed it at, and that time has not passed. Anything else means
-- someone changed the entry since (a redelivery moved it forward, or the
-- claim expired and another dispatcher owns it), and it is left to them.
-- Returns 1 when applied, 0 when not.
-- KEYS: 1 retry schedule
-- ARGV: 1 member, 2 claimed until ms, 3 now ms, 4 new due time ms, '' to
--       remove
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
score = tonumber(score)
if score ~= tonumber(ARGV[2]) or score <= tonumber(ARGV[3]) then return 0 end
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
end
return 1
