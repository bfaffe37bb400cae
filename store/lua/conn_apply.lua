-- Applies a finished link's write to its connection, in the connection's
-- shard (the relay's way, and a Redis Cluster's: there the link and its
-- connection live in different slots, so the link keeps the write as an
-- intent until this step makes it). The caller then forgets the intent.
-- KEYS: 1 connection, 2 connection's links, 3 the organization's connections
--       index (its part in this shard)
-- ARGV: as conn_write takes them, from 1
--#include conn_write
return conn_write(KEYS[1], KEYS[2], KEYS[3], ARGV, 1)
