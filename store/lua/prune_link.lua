-- Removes a link whose retention ended from its organization's link indexes
-- (every link, by integration, by user) and its entry from the retention
-- schedule, if that entry is still due: the link's end, or a sweeper that
-- found its session holding it, may have moved the entry since it was read.
-- KEYS: 1 retention schedule, 2-4 (optional) the links index, the
--       by-integration and the by-user index
-- ARGV: 1 the entry (retentionMember), 2 now ms, 3 link id
-- Returns 1 when it pruned, 0 when the entry was not due.
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], ARGV[3]) end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
