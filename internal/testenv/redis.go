package testenv

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/embedded"
)

// RedisEnv is where a test's Redis state lives.
type RedisEnv struct {
	// URL and Cluster are what a linkflow process is given (--redis-url,
	// --redis-cluster).
	URL     string
	Cluster bool
	// Prefix is the key prefix the test's stores use (store.Config.Prefix,
	// --redis-prefix), which keeps tests sharing one cluster apart; "" on a
	// server of the test's own.
	Prefix string
	// Server is the test's own redis-server; nil on a shared cluster.
	Server *embedded.Redis
}

// Redis returns a client of the Redis the test runs against, and where it
// is; everything is closed when the test ends. It is a redis-server of the
// test's own (persistence off). A missing redis-server fails the test.
func Redis(t testing.TB) (redis.UniversalClient, *RedisEnv) {
	t.Helper()
	c, s := RedisSingle(t)
	return c, &RedisEnv{URL: s.URL, Server: s}
}

// RedisSingle starts a redis-server of the test's own, whatever the mode,
// for tests that stop or kill it.
func RedisSingle(t testing.TB) (*redis.Client, *embedded.Redis) {
	t.Helper()
	s, err := embedded.StartRedis(embedded.RedisOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close(); s.Kill() })
	return c, s
}
