-- Stores the end user's answer to the link's current challenge, once: a
-- second answer to the same challenge, before the worker asks again (after
-- a wrong code) or moves on, is refused, as the first is taken or being
-- checked and the second would be dropped. One past the challenge's expiry
-- is refused: the session no longer waits for it. The session reads the
-- answer once more at the expiry, so an answer in time is kept a grace
-- past it (the next challenge, the session's end or its hand-back drop it
-- anyway); a challenge without an expiry keeps it a minute. One the session
-- closed with its last read (take_input.lua) is refused as expired too.
-- KEYS: 1 link, 2 answer
-- ARGV: 1 challenge id, 2 sealed answer, 3 now ms, 4 grace ms
local cur = redis.call('HMGET', KEYS[1], 'status', 'challenge', 'answered', 'closed')
if cur[1] ~= 'awaiting_input' or not cur[2] then return {'state', cur[1] or ''} end
local ok, ch = pcall(cjson.decode, cur[2])
if not ok or type(ch) ~= 'table' or ch.id ~= ARGV[1] then return {'wrong'} end
local ttl = 60000
local exp = tonumber(ch.expiresAt) or 0
if exp > 0 then
  if exp <= tonumber(ARGV[3]) then return {'expired'} end
  ttl = exp - tonumber(ARGV[3]) + tonumber(ARGV[4])
end
if cur[3] == ARGV[1] then return {'answered'} end
if cur[4] == ARGV[1] then return {'expired'} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', string.format('%d', ttl))
redis.call('HSET', KEYS[1], 'answered', ARGV[1])
return {'ok'}
