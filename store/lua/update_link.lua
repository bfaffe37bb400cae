-- Updates a link under a fence: the caller's lease token ('lease') or the
-- version it read ('version'). Optionally releases the lease (and the
-- link's holder with it). A link that
-- ended is not updated by version ('ended <status>'): it may read as
-- running while its connection's write waits (a Cluster), and a reader of
-- that view must not change it.
-- KEYS: 1 link, 2 lease, 3 (a session's update, fenced by its lease) the end
--       user's answer to its last asking, spent
-- ARGV: 1 fence kind, 2 fence value, 3 '1' to release the lease,
--       4 attempts delta, 5 number of field/value pairs n, 6.. n pairs,
--       then names of fields to delete
if ARGV[1] == 'lease' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 'fenced' end
else
  local cur = redis.call('HMGET', KEYS[1], 'version', 'status')
  if cur[1] ~= ARGV[2] then return 'fenced' end
  local st = cur[2]
  if st == 'succeeded' or st == 'failed' or st == 'expired' or st == 'canceled' then return 'ended ' .. st end
end
local n = tonumber(ARGV[5])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 6, 5 + 2 * n)) end
if #ARGV > 5 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 6 + 2 * n)) end
if ARGV[4] ~= '0' then redis.call('HINCRBY', KEYS[1], 'attempts', ARGV[4]) end
redis.call('HINCRBY', KEYS[1], 'version', '1')
if KEYS[3] then redis.call('DEL', KEYS[3]) end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[1], 'holder') -- released: not to be taken back
end
return 'ok'
