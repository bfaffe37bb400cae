// Package testenv starts the real things linkflow's tests talk to: a
// redis-server child process on a free loopback port and an embedded NATS
// server with JetStream, or their clusters. A missing redis-server (or
// redis-cli, for a cluster) fails the test loudly; it never skips it.
//
// LINKFLOW_TEST_REDIS=cluster runs the tests that call Redis on one 3-master
// Redis Cluster the test binary shares, each test under a key prefix of its
// own (RedisEnv.Prefix); RedisSingle and RedisCluster give a test a server or
// a cluster of its own whatever the mode.
package testenv
