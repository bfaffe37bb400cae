-- Extends a session's lease if the caller still holds it, and reports what the
-- worker must notice: a cancel request and a pending challenge answer.
-- A lease that lapsed while Redis did not answer (a stall, a failover
-- longer than the TTL) is taken back when it is vacant, the link still
-- names the caller as its holder (no session began since) and has not
-- ended: the session was never replaced. The version moves, so a change
-- fenced by a version read while it was vacant (failing a dead-lettered
-- link) does not land under the session.
-- KEYS: 1 lease, 2 link, 3 input
-- ARGV: 1 lease token, 2 lease ttl ms
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  if cur then return {'lost'} end
  local v = redis.call('HMGET', KEYS[2], 'holder', 'status')
  if v[1] ~= ARGV[1] or (v[2] ~= 'running' and v[2] ~= 'awaiting_input') then return {'lost'} end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'version', 1)
end
return {'ok', redis.call('HGET', KEYS[2], 'cancel') or '', redis.call('EXISTS', KEYS[3])}
