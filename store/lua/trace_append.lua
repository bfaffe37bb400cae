-- Appends entries to a debug link's trace, keeps the last ones, and keeps
-- the trace as long as the link can live (finishing the link shortens it to
-- the link's retention).
-- KEYS: 1 trace
-- ARGV: 1 entries kept, 2 ttl ms, 3.. entries (JSON)
if redis.call('RPUSH', KEYS[1], unpack(ARGV, 3)) > tonumber(ARGV[1]) then
  redis.call('LTRIM', KEYS[1], '-' .. ARGV[1], '-1')
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 'ok'
