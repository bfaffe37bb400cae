-- settle_claim moves a claimed entry of the retry schedule to a new due
-- time, or removes it, only while the caller's claim holds: the entry is
-- still at the score the caller claimed it at, and that time has not passed.
-- Anything else means someone changed the entry since (a redelivery moved it
-- forward, or the claim expired and another dispatcher owns it), and it is
-- left to them. Returns 1 when applied, 0 when not.
-- key: the retry schedule; member; claimed: claimed until ms; now: ms;
-- due: the new due time ms, '' to remove
local function settle_claim(key, member, claimed, now, due)
  local score = redis.call('ZSCORE', key, member)
  if not score then return 0 end
  score = tonumber(score)
  if score ~= tonumber(claimed) or score <= tonumber(now) then return 0 end
  if due == '' then
    redis.call('ZREM', key, member)
  else
    redis.call('ZADD', key, due, member)
  end
  return 1
end
