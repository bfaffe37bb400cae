-- Accepts an event for webhook delivery: reads its record and creates its
-- delivery state unless that exists (a redelivered JetStream message must
-- not restart the schedule), and puts a pending delivery in the retry
-- schedule (the same shard's) unless it is there: at its own time when that
-- is later than now, else claimed for the caller until ARGV[5].
-- Returns {'missing'} when no event is recorded under that id, else
-- {'created' or 'exists', owned ('1' when this call claimed the delivery,
-- else '0'), state pairs, event field pairs}; the event only while the
-- delivery is pending.
-- KEYS: 1 event record, 2 delivery state, 3 the link's record (event_body),
--       4 retry schedule
-- ARGV: 1 now ms, 2 ttl ms, 3 first attempt at ms, 4 organization,
--       5 claimed until ms, 6 the delivery's schedule member
--#include event_body
local ev = redis.call('HGETALL', KEYS[1])
if #ev == 0 then return {'missing'} end
local f = {}
for i = 1, #ev, 2 do f[ev[i]] = ev[i + 1] end
if f['org'] ~= ARGV[4] then return {'missing'} end
local outcome, state, status, nextAt = 'exists', nil, nil, nil
if redis.call('EXISTS', KEYS[2]) == 0 then
  outcome = 'created'
  local url = f['url'] or ''
  local first = ARGV[3]
  status = 'pending'
  if url == '' then status, first = 'no_target', '0' end
  nextAt = first
  state = {'status', status, 'attempts', '0', 'step', '0', 'version', '1', 'trigger', 'initial', 'nextAt', first,
    'createdAt', ARGV[1], 'org', ARGV[4], 'type', f['type'] or '', 'link', f['link'] or '', 'url', url}
  redis.call('HSET', KEYS[2], unpack(state))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
else
  state = redis.call('HGETALL', KEYS[2])
  for i = 1, #state, 2 do
    if state[i] == 'status' then status = state[i + 1] elseif state[i] == 'nextAt' then nextAt = state[i + 1] end
  end
end
if status ~= 'pending' then return {outcome, '0', state} end
-- A redelivered message finds the entry there (whoever holds it owns the
-- delivery), or missing after a crash between two steps.
local at, owned = ARGV[5], '1'
if (tonumber(nextAt) or 0) > tonumber(ARGV[1]) then at, owned = nextAt, '0' end
if redis.call('ZADD', KEYS[4], 'NX', at, ARGV[6]) == 0 then owned = '0' end
return {outcome, owned, state, event_body(ev, KEYS[3])}
