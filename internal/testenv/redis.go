package testenv

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/embedded"
)

// Redis starts a redis-server (persistence off) for the test and returns a
// client and the server; both are stopped when the test ends. A missing
// redis-server fails the test.
func Redis(t testing.TB) (*redis.Client, *embedded.Redis) {
	t.Helper()
	s, err := embedded.StartRedis(embedded.RedisOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close(); s.Kill() })
	return c, s
}
