-- event_body completes an event record's field pairs (ev, as HGETALL gives
-- them) with its webhook body. A link's completion event does not keep the
-- link's result a second time: its record holds the body's parts before
-- ('head') and after ('tail') the result, which the link holds (linkkey,
-- the link's record, in the event's shard); a body kept whole ('body') is
-- left as it is. A link gone before its event leaves null in its place.
local function event_body(ev, linkkey)
  local head, tail
  for i = 1, #ev, 2 do
    if ev[i] == 'head' then head = ev[i + 1] elseif ev[i] == 'tail' then tail = ev[i + 1] end
  end
  if head then
    ev[#ev + 1] = 'body'
    ev[#ev + 1] = head .. (redis.call('HGET', linkkey, 'result') or 'null') .. (tail or '')
  end
  return ev
end
