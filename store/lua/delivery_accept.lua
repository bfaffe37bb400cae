-- Accepts an event for webhook delivery: reads it from the organization's
-- event log and creates its delivery state unless that exists (a redelivered
-- JetStream message must not restart the schedule).
-- Returns {'missing'} when the log has no such event at that position, else
-- {'created' or 'exists', state pairs, event field pairs}; the event only
-- while the delivery is pending.
-- KEYS: 1 event log, 2 delivery state
-- ARGV: 1 stream id, 2 event id, 3 now ms, 4 ttl ms, 5 first attempt at ms
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
local ev = found[1] and found[1][2]
if not ev then return {'missing'} end
local f = {}
for i = 1, #ev, 2 do f[ev[i]] = ev[i + 1] end
if f['id'] ~= ARGV[2] then return {'missing'} end
local outcome = 'exists'
if redis.call('EXISTS', KEYS[2]) == 0 then
  outcome = 'created'
  local url = f['url'] or ''
  local status, first = 'pending', ARGV[5]
  if url == '' then status, first = 'no_target', 0 end
  redis.call('HSET', KEYS[2], 'status', status, 'attempts', 0, 'step', 0, 'version', 1,
    'trigger', 'initial', 'nextAt', first, 'createdAt', ARGV[3],
    'type', f['type'] or '', 'link', f['link'] or '', 'stream', ARGV[1], 'url', url)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local state = redis.call('HGETALL', KEYS[2])
if redis.call('HGET', KEYS[2], 'status') ~= 'pending' then return {outcome, state} end
return {outcome, state, ev}
