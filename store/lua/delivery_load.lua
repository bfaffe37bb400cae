-- Reads a delivery's state and, while it is pending, its event from the
-- organization's event log.
-- Returns {} without state, else {state pairs} or {state pairs, event field
-- pairs}.
-- KEYS: 1 delivery state, 2 event log
local state = redis.call('HGETALL', KEYS[1])
if #state == 0 then return {} end
local status, stream = '', ''
for i = 1, #state, 2 do
  if state[i] == 'status' then status = state[i + 1] elseif state[i] == 'stream' then stream = state[i + 1] end
end
if status ~= 'pending' or stream == '' then return {state} end
local found = redis.pcall('XRANGE', KEYS[2], stream, stream)
if type(found) ~= 'table' or found.err or not found[1] then return {state} end
return {state, found[1][2]}
