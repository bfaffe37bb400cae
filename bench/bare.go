package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// bareDeployment is Redis and JetStream without linkflow processes: bench
// preloads work into them through the store and the outbox publisher, then
// starts the one kind of process it measures.
type bareDeployment struct {
	dir   string
	keys  string
	redis *embedded.Redis        // when bench started a single server
	rc    *embedded.RedisCluster // when bench started a cluster
	ns    *server.Server         // when bench started NATS
	// redisURL, cluster, prefix and natsURL are what processes join.
	redisURL, prefix, natsURL string
	cluster                   bool
	replicas                  int
	sandboxInRedis            bool
	rdb                       redis.UniversalClient
	st                        *store.Store
	nc                        *nats.Conn
	js                        jetstream.JetStream
	pub                       *outbox.Publisher
	org                       *linkflow.Org
}

// startBareDeployment starts Redis and JetStream in a new directory, with
// linkflow's streams, an organization and a started publisher. On error it
// stops what it started.
func startBareDeployment(ctx context.Context, cfg Config) (b *bareDeployment, err error) {
	dir, err := os.MkdirTemp("", "linkflow-bench-")
	if err != nil {
		return nil, err
	}
	b = &bareDeployment{dir: dir, keys: store.GenerateKey("bench"), redisURL: cfg.RedisURL, cluster: cfg.RedisCluster,
		natsURL: cfg.NATSURL, replicas: max(cfg.StreamReplicas, 1), sandboxInRedis: cfg.SandboxInRedis}
	defer func() {
		if err != nil {
			b.stop(cfg.Keep)
		}
	}()
	switch {
	case b.redisURL != "":
		// Someone else's Redis: bench's keys under a prefix of their own.
		b.prefix = "bench" + store.NewAPIKey()[4:12] + ":"
	case cfg.RedisMasters > 1:
		if b.rc, err = embedded.StartRedisCluster(embedded.RedisClusterOptions{Dir: filepath.Join(dir, "redis"),
			Masters: cfg.RedisMasters, AppendOnly: true}); err != nil {
			return nil, err
		}
		b.redisURL, b.cluster = b.rc.URL, true
	default:
		if b.redis, err = embedded.StartRedis(embedded.RedisOptions{Dir: filepath.Join(dir, "redis"), AppendOnly: true}); err != nil {
			return nil, err
		}
		b.redisURL = b.redis.URL
	}
	if b.natsURL == "" {
		if b.ns, err = embedded.StartNATS(embedded.NATSOptions{Dir: filepath.Join(dir, "jetstream")}); err != nil {
			return nil, err
		}
		b.natsURL = b.ns.ClientURL()
	}
	if b.rdb, err = store.DialRedis(b.redisURL, b.cluster); err != nil {
		return nil, err
	}
	kr, err := store.ParseKeyring(b.keys)
	if err != nil {
		return nil, err
	}
	if b.st, err = store.New(store.Config{Redis: b.rdb, Keyring: kr, Prefix: b.prefix}); err != nil {
		return nil, err
	}
	if b.nc, b.js, err = outbox.Connect(ctx, outbox.ConnectConfig{URL: b.natsURL,
		Streams: outbox.StreamConfig{Replicas: b.replicas}}); err != nil {
		return nil, err
	}
	if b.pub, err = outbox.NewPublisher(outbox.PublisherConfig{JetStream: b.js, Store: b.st}); err != nil {
		return nil, err
	}
	if err := b.pub.Start(ctx); err != nil {
		b.pub = nil
		return nil, err
	}
	if b.org, err = b.st.CreateOrg(ctx, "", "bench", ""); err != nil {
		return nil, err
	}
	return b, nil
}

// stop stops what startBareDeployment started and, unless keep, removes
// its directory.
func (b *bareDeployment) stop(keep bool) {
	if b.pub != nil {
		b.pub.Stop()
	}
	if b.nc != nil {
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.rdb != nil {
		_ = b.rdb.Close()
	}
	if b.redis != nil {
		b.redis.Stop()
	}
	if b.rc != nil {
		b.rc.Stop()
	}
	if !keep {
		_ = os.RemoveAll(b.dir)
	}
}

// serverArgs are the flags a linkflow process needs to join the deployment.
func (b *bareDeployment) serverArgs(metricsAddr string) []string {
	args := []string{"--nats-url", b.natsURL, "--redis-url", b.redisURL, "--encryption-keys", b.keys,
		"--metrics-addr", metricsAddr, "--log-level", "warn", "--sandbox", "--stream-replicas", strconv.Itoa(b.replicas)}
	if b.cluster {
		args = append(args, "--redis-cluster")
	}
	if b.prefix != "" {
		args = append(args, "--redis-prefix", b.prefix)
	}
	if !b.sandboxInRedis {
		args = append(args, "--sandbox-memory")
	}
	return args
}

// redisPids are the Redis servers bench started, for the CPU figures.
func (b *bareDeployment) redisPids() []int {
	switch {
	case b.redis != nil:
		return []int{b.redis.Pid()}
	case b.rc != nil:
		var out []int
		for _, n := range b.rc.Nodes {
			out = append(out, n.Pid())
		}
		return out
	}
	return nil
}

// preload runs fn for i in [0, n) on 32 goroutines and publishes the
// messages each returns, as linkflow's processes would after a commit.
func (b *bareDeployment) preload(ctx context.Context, n int, fn func(i int) (linkflow.Message, error)) error {
	return parallel(n, 32, func(i int) error {
		m, err := fn(i)
		if err != nil {
			return err
		}
		return b.pub.Publish(ctx, m)
	})
}

// finished counts the links that have finished: each publishes exactly one
// completion event (link.succeeded or link.failed) on the events stream,
// which nothing consumes while bench measures workers alone.
func (b *bareDeployment) finished(ctx context.Context) (done, failed int, err error) {
	stream, err := b.js.Stream(ctx, outbox.StreamEvents)
	if err != nil {
		return 0, 0, err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(outbox.EventsOf(b.org.ID)))
	if err != nil {
		return 0, 0, err
	}
	succeeded := int(info.State.Subjects[outbox.EventSubject(b.org.ID, linkflow.EventLinkSucceeded)])
	failed = int(info.State.Subjects[outbox.EventSubject(b.org.ID, linkflow.EventLinkFailed)])
	return succeeded + failed, failed, nil
}
