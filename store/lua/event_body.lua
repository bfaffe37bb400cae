-- event_body completes an event record's field pairs (ev, as HGETALL gives
-- them) with its webhook body. A link's completion event does not keep the
-- link's result a second time: its record holds the body's parts before
-- ('head') and after ('tail') the result, which the link holds (linkkey,
-- the link's record, in the event's shard); those parts are replaced by
-- 'body'. A body kept whole ('body') is left as it is. A link gone before
-- its event (only by hand, or by eviction: run Redis with noeviction)
-- leaves null in its place.
local function event_body(ev, linkkey)
  local head, tail
  for i = 1, #ev, 2 do
    if ev[i] == 'head' then head = ev[i + 1] elseif ev[i] == 'tail' then tail = ev[i + 1] end
  end
  if not head then return ev end
  local out = {}
  for i = 1, #ev, 2 do
    if ev[i] ~= 'head' and ev[i] ~= 'tail' then
      out[#out + 1] = ev[i]
      out[#out + 1] = ev[i + 1]
    end
  end
  out[#out + 1] = 'body'
  out[#out + 1] = head .. (redis.call('HGET', linkkey, 'result') or 'null') .. (tail or '')
  return out
end
