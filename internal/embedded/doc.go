// Package embedded starts the servers linkflow runs beside itself in dev mode
// and in tests: a redis-server child process and an in-process NATS server
// with JetStream. Both are the real servers.
package embedded
