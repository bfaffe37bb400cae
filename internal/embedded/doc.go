// Package embedded starts the servers linkflow runs beside itself in dev mode
// and in tests: a redis-server child process and an in-process NATS server
// with JetStream, and for tests their clusters: a 3-master Redis Cluster of
// redis-server children formed with redis-cli (StartRedisCluster), and a
// JetStream cluster of in-process servers routed on loopback
// (StartNATSCluster). All are the real servers.
package embedded
