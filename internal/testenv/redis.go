package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/embedded"
)

// RedisModeEnv is the environment variable that says which Redis Redis(t)
// returns: unset (or "single") for a redis-server of each test's own,
// "cluster" for one 3-master Redis Cluster the whole test binary shares.
const RedisModeEnv = "LINKFLOW_TEST_REDIS"

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

// ClusterMode reports whether Redis(t) returns the shared Redis Cluster
// (LINKFLOW_TEST_REDIS=cluster). Any other value than "", "single" and
// "cluster" fails the test.
func ClusterMode(t testing.TB) bool {
	t.Helper()
	switch m := os.Getenv(RedisModeEnv); m {
	case "", "single":
		return false
	case "cluster":
		return true
	default:
		t.Fatalf("%s=%q: want single or cluster", RedisModeEnv, m)
		return false
	}
}

// Redis returns a client of the Redis the test runs against, and where it
// is; the client is closed when the test ends. By default it is a
// redis-server of the test's own (persistence off). With
// LINKFLOW_TEST_REDIS=cluster it is a *redis.ClusterClient of the Redis
// Cluster every test of the binary shares, started on first use, and the
// test gets a key prefix of its own (RedisEnv.Prefix) that its stores must
// use. A missing redis-server (or redis-cli, in cluster mode) fails the
// test.
func Redis(t testing.TB) (redis.UniversalClient, *RedisEnv) {
	t.Helper()
	if !ClusterMode(t) {
		c, s := RedisSingle(t)
		return c, &RedisEnv{URL: s.URL, Server: s}
	}
	rc, err := sharedCluster()
	if err != nil {
		t.Fatalf("shared redis cluster: %v", err)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	return c, &RedisEnv{URL: rc.URL, Cluster: true, Prefix: testPrefix()}
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

// RedisCluster starts a 3-master Redis Cluster of the test's own, whatever
// the mode, for tests that need a cluster (or stop its nodes); it is killed
// when the test ends. Its RedisEnv has no prefix.
func RedisCluster(t testing.TB) (*redis.ClusterClient, *RedisEnv) {
	t.Helper()
	rc, err := embedded.StartRedisCluster(embedded.RedisClusterOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("redis cluster: %v", err)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close(); rc.Kill() })
	return c, &RedisEnv{URL: rc.URL, Cluster: true}
}

// testPrefix is a key prefix no other test of any binary uses.
func testPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + ":"
}

// shared is the Redis Cluster of cluster mode, one per test binary. Nothing
// stops it: its servers die with the test binary (Pdeathsig), and the next
// binary to start one removes the directories of dead binaries.
var shared struct {
	once sync.Once
	rc   *embedded.RedisCluster
	err  error
}

const sharedDirPattern = "linkflow-test-redis-cluster-"

func sharedCluster() (*embedded.RedisCluster, error) {
	shared.once.Do(func() {
		removeStaleDirs()
		dir, err := os.MkdirTemp("", sharedDirPattern+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			shared.err = err
			return
		}
		// Pdeathsig fires when the thread that started a child ends, not the
		// process: the servers start on a thread that lives as long as the
		// test binary.
		started := make(chan struct{})
		go func() {
			runtime.LockOSThread() // never unlocked: the thread never ends
			shared.rc, shared.err = embedded.StartRedisCluster(embedded.RedisClusterOptions{Dir: dir})
			close(started)
			select {}
		}()
		<-started
		if shared.err != nil {
			_ = os.RemoveAll(dir)
		}
	})
	return shared.rc, shared.err
}

// removeStaleDirs removes the shared clusters' directories of test binaries
// that no longer run.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPattern+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(d), sharedDirPattern), "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
}
