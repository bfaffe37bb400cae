-- Records, under the session's lease, that the provider refused a password
-- and the end user is asked for it again: the challenge, and how many
-- passwords were refused in a row (begin_run.lua hands the count to a later
-- attempt, which asks before it logs in). A write sent again after its
-- reply was lost finds its challenge asked already, and leaves it and any
-- answer to it as they are.
-- KEYS: 1 link, 2 lease, 3 the end user's answer to the last asking
-- ARGV: 1 lease token, 2 challenge record, 3 refused count
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'fenced' end
if redis.call('HGET', KEYS[1], 'challenge') == ARGV[2] then return 'ok' end
redis.call('HSET', KEYS[1], 'status', 'awaiting_input', 'challenge', ARGV[2], 'passwordsRefused', ARGV[3])
redis.call('HDEL', KEYS[1], 'answered')
redis.call('HINCRBY', KEYS[1], 'version', '1')
redis.call('DEL', KEYS[3])
return 'ok'
