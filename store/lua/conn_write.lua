-- conn_write writes a finished link's connection, once: a write already
-- applied (the connection's last link is this one), older than the
-- connection's last (a later link renewed it first), or older than its
-- revocation (a delete that did not see this link's write, which came late
-- on a Cluster: its credentials were not revoked at the provider, and must
-- not bring a deleted connection back), changes nothing.
-- ck1 connection, ck2 the connection's links, ck3 the organization's
-- connections index (its part in the connection's shard); a[i..]: link id,
-- connection id, finished at ms, n pairs, n set-once pairs, how many link
-- ids the connection lists, the pairs, then the set-once pairs.
-- A write that makes an 'error' connection healthy again names its link in
-- 'repairedBy', until the connection.healthy event is recorded
-- (conn_announce.lua), and answers 'repaired'; so does a write already
-- applied whose event is not recorded yet.
-- Returns 'ok', 'repaired', 'applied' or 'stale'.
local function conn_write(ck1, ck2, ck3, a, i)
  local link, id, at = a[i], a[i + 1], a[i + 2]
  local np, no = tonumber(a[i + 3]), tonumber(a[i + 4])
  local c = redis.call('HMGET', ck1, 'lastLinkId', 'lastFinishedAt', 'firstLinkId', 'version', 'status', 'revokedAt',
    'repairedBy')
  if c[1] == link then
    if c[7] == link then return 'repaired' end
    return 'applied'
  end
  if c[2] and tonumber(c[2]) > tonumber(at) then return 'stale' end
  if c[5] == 'revoked' and c[6] and tonumber(c[6]) >= tonumber(at) then return 'stale' end
  local first, last = i + 6, i + 5 + 2 * np
  local out = 'ok'
  if c[3] then
    redis.call('HSET', ck1, 'version', string.format('%d', (tonumber(c[4]) or 0) + 1), unpack(a, first, last))
    if c[5] == 'error' then
      redis.call('HSET', ck1, 'repairedBy', link)
      out = 'repaired'
    end
  else
    -- A new connection: its set-once fields too, and listed in the order of
    -- the links that made them.
    redis.call('HSET', ck1, 'firstLinkId', link, 'version', '1', unpack(a, first, last + 2 * no))
    redis.call('ZADD', ck3, '0', link .. ':' .. id)
  end
  if redis.call('RPUSH', ck2, link) > tonumber(a[i + 5]) then
    redis.call('LTRIM', ck2, '-' .. a[i + 5], '-1')
  end
  return out
end
