-- Replaces a claimed link's sealed password, under the worker's lease: the
-- end user entered it again after a wrong one, and a later session attempt
-- of the link must log in with the one that worked, and not ask for it
-- again (the count of refused passwords goes). Its deadline stays.
-- KEYS: 1 lease, 2 password, 3 link
-- ARGV: 1 lease token, 2 sealed password
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'fenced' end
if not redis.call('SET', KEYS[2], ARGV[2], 'XX', 'KEEPTTL') then return 'gone' end
redis.call('HDEL', KEYS[3], 'passwordsRefused')
return 'ok'
