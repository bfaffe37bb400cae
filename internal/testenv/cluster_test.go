package testenv_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// A test's own Redis Cluster is a real one: keys of different hash tags
// land on every master, one command over two slots fails with CROSSSLOT,
// and the URL it hands out is one store.DialRedis takes.
func TestRedisClusterSpreadsHashTags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Now()
	c, env := testenv.RedisCluster(t)
	t.Logf("3-master Redis Cluster formed in %s", time.Since(start).Round(time.Millisecond))
	if !env.Cluster || env.Prefix != "" || env.Server != nil {
		t.Fatalf("env: %+v", env)
	}

	masters := map[string]int{}
	for i := range 64 {
		key := "link:{link_" + strconv.Itoa(i) + "}"
		m, err := c.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr]++
		if err := c.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		// The server hashes as the client does.
		slot, err := m.ClusterKeySlot(ctx, key).Result()
		if err != nil || slot != c.ClusterKeySlot(ctx, "{link_"+strconv.Itoa(i)+"}").Val() {
			t.Fatalf("slot of %s: %d %v", key, slot, err)
		}
	}
	if len(masters) != 3 {
		t.Fatalf("64 hash tags on %d masters, want 3: %v", len(masters), masters)
	}
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		if err == nil && n == 0 {
			err = errors.New("holds no key")
		}
		if err != nil {
			return errors.New(m.Options().Addr + ": " + err.Error())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := c.Do(ctx, "MSET", "{a}:x", "1", "{b}:y", "2").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Fatalf("MSET over two slots: %v, want CROSSSLOT", err)
	}

	rdb, err := store.DialRedis(env.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("store.DialRedis(%s) made %T", env.URL, rdb)
	}
	if v, err := rdb.Get(ctx, "link:{link_7}").Result(); err != nil || v != "7" {
		t.Fatalf("through store.DialRedis: %q %v", v, err)
	}
}

// In cluster mode every test shares one Redis Cluster and gets a key prefix
// of its own.
func TestRedisSharedClusterMode(t *testing.T) {
	t.Setenv(testenv.RedisModeEnv, "cluster")
	var envs []*testenv.RedisEnv
	for i := range 2 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			c, env := testenv.Redis(t)
			if _, ok := c.(*redis.ClusterClient); !ok {
				t.Fatalf("cluster mode made %T", c)
			}
			if !env.Cluster || env.Server != nil || !strings.HasPrefix(env.Prefix, "t") || !strings.HasSuffix(env.Prefix, ":") {
				t.Fatalf("env: %+v", env)
			}
			if err := c.Set(context.Background(), env.Prefix+"k", i, 0).Err(); err != nil {
				t.Fatal(err)
			}
			envs = append(envs, env)
		})
	}
	if len(envs) != 2 || envs[0].URL != envs[1].URL || envs[0].Prefix == envs[1].Prefix {
		t.Fatalf("two tests: %+v %+v, want one cluster and two prefixes", envs[0], envs[1])
	}
}

// A JetStream cluster keeps a 3-replica stream through the loss of the
// stream's leader.
func TestNATSClusterSurvivesStreamLeaderLoss(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	nc, _, _ := testenv.NATSCluster(t)
	t.Logf("3-server JetStream cluster ready in %s", time.Since(start).Round(time.Millisecond))
	// The streams are made as a linkflow process makes them, by Connect:
	// on a fresh cluster a create request can go unanswered although the
	// stream was made (nats-server #3677), and a single EnsureStreams call
	// would wait for the answer until the test's deadline.
	conn, js, err := outbox.Connect(ctx, outbox.ConnectConfig{URL: nc.URL, Streams: outbox.StreamConfig{Replicas: 3}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close) // before the cluster stops: cleanups run last first
	// The stream's create answer can come before every server has heard of
	// its subjects, and a publish through the server that has not yet is
	// answered "no response from stream": the first publish waits as the
	// outbox's relay does, by trying again, under a message id so that a
	// try whose answer was lost is not stored twice.
	publish := func(body string) func() bool {
		return func() bool {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := js.Publish(pctx, outbox.SubjectEvents+"test", []byte(body), jetstream.WithMsgID(body))
			return err == nil
		}
	}
	testenv.Eventually(t, 30*time.Second, "a publish to the new 3-replica stream", publish("one"))
	info := streamInfo(ctx, t, js)
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	leader := info.Cluster.Leader
	if err := nc.StopServer(leader); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "a publish after the stream leader "+leader+" stopped", publish("two"))
	info = streamInfo(ctx, t, js)
	if info.Cluster.Leader == leader || info.Cluster.Leader == "" || info.State.Msgs != 2 {
		t.Fatalf("after losing %s: leader %q, %d messages", leader, info.Cluster.Leader, info.State.Msgs)
	}
}

func streamInfo(ctx context.Context, t *testing.T, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	s, err := js.Stream(ctx, outbox.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// Without redis-cli a cluster cannot be formed: the error says what to
// install.
func TestRedisClusterWithoutRedisCLI(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(embedded.MissingRedis)
	}
	bin := t.TempDir()
	if err := os.Symlink(server, filepath.Join(bin, "redis-server")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	_, err = embedded.StartRedisCluster(embedded.RedisClusterOptions{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y redis-tools") {
		t.Fatalf("without redis-cli: %v", err)
	}
}
