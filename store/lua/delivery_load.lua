-- Reads a delivery's state and, while it is pending, its event's record.
-- Returns {} without state, else {state pairs} or {state pairs, event field
-- pairs}.
-- KEYS: 1 delivery state, 2 event record, 3 the link's record (event_body)
-- ARGV: 1 organization
--#include event_body
local state = redis.call('HGETALL', KEYS[1])
if #state == 0 then return {} end
local status, org = '', ''
for i = 1, #state, 2 do
  if state[i] == 'status' then status = state[i + 1] end
  if state[i] == 'org' then org = state[i + 1] end
end
if org ~= ARGV[1] then return {} end
if status ~= 'pending' then return {state} end
local ev = redis.call('HGETALL', KEYS[2])
if #ev == 0 then return {state} end
return {state, event_body(ev, KEYS[3])}
