-- Releases a connection's lock if the caller still holds it.
-- KEYS: 1 lock
-- ARGV: 1 fencing token
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
