-- Accepts an event for webhook delivery: reads its record and creates its
-- delivery state unless that exists (a redelivered JetStream message must
-- not restart the schedule).
-- Returns {'missing'} when no event is recorded under that id, else
-- {'created' or 'exists', state pairs, event field pairs}; the event only
-- while the delivery is pending.
-- KEYS: 1 event record, 2 delivery state, 3 the link's record (event_body)
-- ARGV: 1 now ms, 2 ttl ms, 3 first attempt at ms, 4 organization
--#include event_body
local ev = redis.call('HGETALL', KEYS[1])
if #ev == 0 then return {'missing'} end
local f = {}
for i = 1, #ev, 2 do f[ev[i]] = ev[i + 1] end
if f['org'] ~= ARGV[4] then return {'missing'} end
local outcome, state, status = 'exists', nil, nil
if redis.call('EXISTS', KEYS[2]) == 0 then
  outcome = 'created'
  local url = f['url'] or ''
  local first = ARGV[3]
  status = 'pending'
  if url == '' then status, first = 'no_target', '0' end
  state = {'status', status, 'attempts', '0', 'step', '0', 'version', '1', 'trigger', 'initial', 'nextAt', first,
    'createdAt', ARGV[1], 'org', ARGV[4], 'type', f['type'] or '', 'link', f['link'] or '', 'url', url}
  redis.call('HSET', KEYS[2], unpack(state))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
else
  state = redis.call('HGETALL', KEYS[2])
  for i = 1, #state, 2 do
    if state[i] == 'status' then status = state[i + 1] end
  end
end
if status ~= 'pending' then return {outcome, state} end
return {outcome, state, event_body(ev, KEYS[3])}
