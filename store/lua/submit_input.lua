-- Stores the end user's answer to the link's current challenge, once: a
-- second answer to the same challenge, before the worker asks again (after
-- a wrong code) or moves on, is refused, as the first is taken or being
-- checked and the second would be dropped.
-- KEYS: 1 link, 2 answer
-- ARGV: 1 challenge id, 2 sealed answer, 3 ttl ms
local cur = redis.call('HMGET', KEYS[1], 'status', 'challenge', 'answered')
if cur[1] ~= 'awaiting_input' or not cur[2] then return {'state', cur[1] or ''} end
local ok, ch = pcall(cjson.decode, cur[2])
if not ok or type(ch) ~= 'table' or ch.id ~= ARGV[1] then return {'wrong'} end
if cur[3] == ARGV[1] then return {'answered'} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[1], 'answered', ARGV[1])
return {'ok'}
