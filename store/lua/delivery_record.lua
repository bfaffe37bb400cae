-- Records one webhook attempt: appends it to the link's attempt log and, when
-- the delivery state is still at the version the attempt was made from,
-- applies the dispatcher's decision (retry later, succeeded, failed, gone).
-- A stale attempt (a manual redelivery or another dispatcher changed the
-- state meanwhile) is logged as superseded and changes nothing else.
-- KEYS: 1 delivery state, 2 link's attempt log, 3 organization's failed set
-- ARGV: 1 version, 2 now ms, 3 log entry without its leading '{"attempt":N,',
--       4 log cap, 5 ttl ms, 6 '1' to write the log, 7 new status,
--       8 new step, 9 next attempt at ms, 10 trigger of the next attempt,
--       11 'ok' when this attempt delivered, 12 status code, 13 error,
--       14 event id, 15 failed set MINSCORE ms
-- With a claim on the delivery's entry in the retry schedule (the same
-- shard's), it settles that entry too (settle_claim), whatever the record's
-- outcome: to the decision's due time (ARGV 19), or to now when the attempt
-- was superseded. KEYS 4 retry schedule; ARGV 16 member ('' without a
-- claim), 17 claimed until ms, 18 now ms, 19 new due time ms or '' to remove.
-- Returns {outcome, attempt number, settled: 1, 0, or '' without a claim}.
--#include settle_claim
local function settle(due)
  if ARGV[16] == '' then return '' end
  return settle_claim(KEYS[4], ARGV[16], ARGV[17], ARGV[18], due)
end
-- A state always has both fields: neither means there is none.
local cur = redis.call('HMGET', KEYS[1], 'version', 'attempts')
if not cur[1] and not cur[2] then return {'missing', '', settle(ARGV[19])} end
local n = (tonumber(cur[2]) or 0) + 1
local ns = string.format('%d', n)
local current = cur[1] == ARGV[1]
if ARGV[6] == '1' then
  local head = '{"attempt":' .. ns .. ','
  if not current then head = head .. '"superseded":true,' end
  if redis.call('RPUSH', KEYS[2], head .. ARGV[3]) > tonumber(ARGV[4]) then
    redis.call('LTRIM', KEYS[2], '-' .. ARGV[4], '-1')
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
-- One HSET for the attempt and, when current, the decision.
local f = {'attempts', ns, 'lastAt', ARGV[2], 'lastCode', ARGV[12], 'lastError', ARGV[13]}
local status = ARGV[7]
if current then
  for _, x in ipairs({'status', status, 'step', ARGV[8], 'nextAt', ARGV[9], 'trigger', ARGV[10],
      'once', '', 'onceFrom', '', 'version', string.format('%d', (tonumber(cur[1]) or 0) + 1)}) do f[#f + 1] = x end
  if ARGV[11] == 'ok' then f[#f + 1] = 'deliveredAt'; f[#f + 1] = ARGV[2] end
  if status == 'failed' then f[#f + 1] = 'failedAt'; f[#f + 1] = ARGV[2] end
end
redis.call('HSET', KEYS[1], unpack(f))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if not current then
  -- A redelivery changed the state during the attempt: the delivery is due
  -- now. The redelivery brings the entry forward itself, but may not have
  -- yet (then the claim still holds, and the entry goes to now here).
  return {'fenced', n, settle(ARGV[18])}
end
if status == 'failed' then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[14])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[15])
else
  redis.call('ZREM', KEYS[3], ARGV[14])
end
return {'ok', n, settle(ARGV[19])}
