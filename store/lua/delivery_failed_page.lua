-- One page of an organization's failed deliveries, oldest first, after a
-- cursor (score and member of the last entry seen). Members with the same
-- score sort by member, as Redis orders them.
-- KEYS: 1 failed set
-- ARGV: 1 cursor score ('' for the first page), 2 cursor member, 3 limit,
--       4 min score (older entries are past retention and skipped),
--       5 max score ('+inf' for none; later entries are left out)
local start = 0
if ARGV[1] ~= '' then
  start = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])) do
    if m > ARGV[2] then start = start - 1 end
  end
end
local minCount = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[4])
if start < minCount then start = minCount end
local stop = start + tonumber(ARGV[3]) - 1
local maxCount = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[5])
if stop > maxCount - 1 then stop = maxCount - 1 end
if stop < start then return {} end
return redis.call('ZRANGE', KEYS[1], start, stop, 'WITHSCORES')
