-- Claims a pending link for the end user: checks the claim code (counting
-- wrong guesses), status, expiry and required username; stores the sealed
-- password until the link's deadline; records the claimed message (kept in
-- the link since its creation) in the outbox.
-- The link leaves the expiry schedule, and its entry in the retention
-- schedule moves to its deadline plus the grace: the sweeper fails it
-- there if it has not ended, and its end moves the entry to the end of its
-- retention (finish_link.lua).
-- KEYS: 1 link, 2 password, 3 outbox, 4 outbox messages, 5 expiring set,
--       6 wrong-code counter, 7 retention schedule
-- ARGV: 1 claim code hash, 2 now ms, 3 sealed password, 4 username,
--       5 minimum session time ms, 6 wrong-code limit, 7 wrong-code window ms,
--       8 link id, 9 claimed message id, 10 grace after the deadline ms
-- Returns {'claimed', integration, expiresAt, claimed message, organization}
-- or a refusal.
--#include retention_member
local l = redis.call('HMGET', KEYS[1], 'claimHash', 'status', 'expiresAt', 'requiredUsername', 'integration', 'version', 'claimMessage', 'org', 'externalUserId')
if not l[1] then return {'not_found'} end
-- Wrong guesses are limited per link; the right code always gets through, so
-- someone who knows only the link id cannot lock its end user out.
if l[1] ~= ARGV[1] then
  local bad = tonumber(redis.call('GET', KEYS[6]) or '0')
  if bad >= tonumber(ARGV[6]) then return {'locked', tostring(redis.call('PTTL', KEYS[6]))} end
  if redis.call('INCR', KEYS[6]) == 1 then redis.call('PEXPIRE', KEYS[6], ARGV[7]) end
  return {'not_found'}
end
local now = tonumber(ARGV[2])
local exp = tonumber(l[3]) or 0
if l[2] == 'pending' and now >= exp then return {'expired'} end
if l[2] ~= 'pending' then return {'conflict', l[2]} end
if l[4] and l[4] ~= '' and l[4] ~= ARGV[4] then return {'username_mismatch'} end
if exp - now < tonumber(ARGV[5]) then exp = now + tonumber(ARGV[5]) end
local f = string.format
redis.call('HSET', KEYS[1], 'status', 'claimed', 'claimedAt', ARGV[2], 'username', ARGV[4],
  'expiresAt', f('%d', exp), 'version', f('%d', (tonumber(l[6]) or 0) + 1))
redis.call('SET', KEYS[2], ARGV[3], 'PX', f('%d', exp - now))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[9])
redis.call('HSET', KEYS[4], ARGV[9], l[7] or '')
redis.call('ZREM', KEYS[5], ARGV[8])
redis.call('ZADD', KEYS[7], f('%d', exp + tonumber(ARGV[10])), retention_member(ARGV[8], l[8], l[5], l[9]))
return {'claimed', l[5], tostring(exp), l[7] or '', l[8] or ''}
