-- A GCRA rate limiter (the generic cell rate algorithm, a leaky bucket that
-- stores one number): the bucket's "theoretical arrival time" (TAT). A
-- request of cost c is allowed when TAT + c*interval - burst*interval <= now,
-- and then moves TAT forward by c*interval. Peek only asks the question;
-- refund gives c back (TAT moves back by c*interval, never before now) and
-- is always allowed.
-- Times are integer microseconds, formatted explicitly: Redis would render a
-- large Lua number with 14 significant digits.
-- KEYS: 1 bucket
-- ARGV: 1 now us, 2 interval us (1/rate), 3 burst, 4 cost, 5 mode ('take',
--       'peek' or 'refund')
-- Returns {allowed 0|1, remaining, retry after us, reset us}
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local stored = redis.call('GET', KEYS[1])
local tat = tonumber(stored or '0')
if tat < now then tat = now end
if ARGV[5] == 'refund' then
  local back = tat - interval * cost
  if back <= now then
    redis.call('DEL', KEYS[1])
    return {1, burst, 0, 0}
  end
  redis.call('SET', KEYS[1], string.format('%.0f', back), 'PX',
    string.format('%.0f', math.ceil((back - now) / 1000) + 1))
  return {1, math.floor((now - (back - interval * burst)) / interval), 0, back - now}
end
local new_tat = tat + interval * cost
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
if ARGV[5] == 'peek' then
  -- A peek changes nothing, yet a full Redis (maxmemory under noeviction)
  -- must refuse it as it refuses a take: the failures it guards could not
  -- be counted then, and guesses would go on unbounded. Redis refuses a
  -- script's first command that may grow memory while it is full, whatever
  -- the command would do: so a write that does nothing here.
  if stored then redis.call('SETNX', KEYS[1], stored) else redis.call('SET', KEYS[1], '0', 'XX') end
  return {1, math.floor((now - tat) / interval) + burst, 0, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
  string.format('%.0f', math.ceil((new_tat - now) / 1000) + 1))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
