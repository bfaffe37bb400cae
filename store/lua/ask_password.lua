-- Records, under the session's lease, that the provider refused a password
-- and the end user is asked for it again: the challenge, and how many
-- passwords were refused in a row (begin_run.lua hands the count to a later
-- attempt, which asks before it logs in). A write sent again after its
-- reply was lost finds its challenge (by id) asked already: it moves the
-- challenge's expiry on and leaves any answer to it as it is. The stored
-- password, refused, is emptied (its key kept for its TTL, the link's
-- deadline, which replace_password.lua keeps for the one that works).
-- KEYS: 1 link, 2 lease, 3 the end user's answer to the last asking,
--       4 password
-- ARGV: 1 lease token, 2 challenge record, 3 challenge id, 4 refused count
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'fenced' end
local cur = redis.call('HGET', KEYS[1], 'challenge')
if cur then
  local ok, ch = pcall(cjson.decode, cur)
  if ok and type(ch) == 'table' and ch.id == ARGV[3] then
    redis.call('HSET', KEYS[1], 'challenge', ARGV[2])
    return 'ok'
  end
end
redis.call('HSET', KEYS[1], 'status', 'awaiting_input', 'challenge', ARGV[2], 'passwordsRefused', ARGV[4])
redis.call('HDEL', KEYS[1], 'answered', 'closed')
redis.call('HINCRBY', KEYS[1], 'version', '1')
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[4], '', 'XX', 'KEEPTTL')
return 'ok'
