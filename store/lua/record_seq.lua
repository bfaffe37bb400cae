-- Records the stream sequence an event's message was first stored at, in
-- the event's record if it still exists.
-- KEYS: 1 event record
-- ARGV: 1 sequence
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSETNX', KEYS[1], 'seq', ARGV[1]) end
return 1
