-- Extends a session's lease if the caller still holds it, and reports what the
-- worker must notice: a cancel request and a pending challenge answer.
-- KEYS: 1 lease, 2 link, 3 input
-- ARGV: 1 lease token, 2 lease ttl ms
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'lost'} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok', redis.call('HGET', KEYS[2], 'cancel') or '', redis.call('EXISTS', KEYS[3])}
