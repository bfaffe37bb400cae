// Package testenv starts the real things linkflow's tests talk to: a
// redis-server child process on a free loopback port and an embedded NATS
// server with JetStream. A missing redis-server fails the test loudly; it never
// skips it.
package testenv
