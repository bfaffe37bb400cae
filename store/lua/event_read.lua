-- Reads an event's record with its webhook body whole.
-- KEYS: 1 event record, 2 the record of the link the event is of (a link's
--       completion event; for another event, a key that is not read)
--#include event_body
return event_body(redis.call('HGETALL', KEYS[1]), KEYS[2])
