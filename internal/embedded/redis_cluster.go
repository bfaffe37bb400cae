package embedded

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MissingRedisCLI explains what to do when redis-cli, which forms a Redis
// Cluster, is not installed.
const MissingRedisCLI = "redis-cli not found on PATH: it forms the test Redis Cluster. Install it " +
	"(Debian: apt-get install -y redis-tools), or run ./test.sh, which installs it when run as root"

// RedisClusterOptions configure a Redis Cluster of redis-server children.
type RedisClusterOptions struct {
	// Dir holds each node's data, node table and log. Required.
	Dir string
	// Masters is how many masters share the 16384 slots. Default 3.
	Masters int
	// Ports are the masters' ports, one each; nil picks free ports. Given
	// ports let a test hand the URL out before the cluster runs.
	Ports []int
	// Timeout bounds the whole start, forming included. Default 30s.
	Timeout time.Duration
	// AppendOnly turns on each master's append-only file, fsynced every
	// second, as in production (benchmarks); default off, as in tests.
	AppendOnly bool
}

// RedisCluster is a running Redis Cluster of redis-server children, masters
// only, formed with redis-cli --cluster create.
type RedisCluster struct {
	// Nodes are the masters' servers, in the order of Addrs.
	Nodes []*Redis
	// Addrs are the masters' host:port.
	Addrs []string
	// URL names every master, comma-separated, as --redis-url and
	// store.DialRedis take a cluster: redis://127.0.0.1:p1,127.0.0.1:p2,...
	URL string
}

// StartRedisCluster starts opts.Masters cluster-enabled redis-server
// children on loopback, forms a cluster of them with redis-cli, and returns
// once every node reports cluster_state:ok. A missing redis-server or
// redis-cli is an error saying what to install.
func StartRedisCluster(opts RedisClusterOptions) (_ *RedisCluster, err error) {
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	if opts.Masters < 3 {
		return nil, fmt.Errorf("redis cluster: %d masters, want at least 3 (redis-cli refuses fewer)", opts.Masters)
	}
	if opts.Ports != nil && len(opts.Ports) != opts.Masters {
		return nil, fmt.Errorf("redis cluster: %d ports for %d masters", len(opts.Ports), opts.Masters)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errors.New(MissingRedisCLI)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()

	c := &RedisCluster{Nodes: make([]*Redis, opts.Masters), Addrs: make([]string, opts.Masters)}
	defer func() {
		if err != nil {
			c.Kill()
		}
	}()
	// The nodes start side by side: each start waits for its PING.
	var wg sync.WaitGroup
	errs := make([]error, opts.Masters)
	for i := range opts.Masters {
		o := RedisOptions{Dir: filepath.Join(opts.Dir, "node-"+strconv.Itoa(i+1)), Cluster: true, AppendOnly: opts.AppendOnly}
		if opts.Ports != nil {
			o.Port = opts.Ports[i]
		}
		wg.Go(func() { c.Nodes[i], errs[i] = StartRedis(o) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("redis cluster: %w", err)
	}
	for i, n := range c.Nodes {
		c.Addrs[i] = n.Addr
	}
	c.URL = "redis://" + strings.Join(c.Addrs, ",")

	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.waitOK(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// waitOK waits until every node says cluster_state:ok: redis-cli returns
// once the nodes agree on the slots, but a node may still be a moment from
// serving them.
func (c *RedisCluster) waitOK(ctx context.Context) error {
	for _, addr := range c.Addrs {
		rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		var last string
		for {
			info, err := rc.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			last = firstLine(info)
			if err != nil {
				last = err.Error()
			}
			select {
			case <-ctx.Done():
				_ = rc.Close()
				return fmt.Errorf("redis cluster: %s never said cluster_state:ok (last: %s)", addr, last)
			case <-time.After(10 * time.Millisecond): // a poll interval
			}
		}
		_ = rc.Close()
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// Stop shuts every node down and waits.
func (c *RedisCluster) Stop() {
	if c == nil {
		return
	}
	c.each((*Redis).Stop)
}

// Kill kills every node at once.
func (c *RedisCluster) Kill() {
	if c == nil {
		return
	}
	c.each((*Redis).Kill)
}

func (c *RedisCluster) each(f func(*Redis)) {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if n != nil {
			wg.Go(func() { f(n) })
		}
	}
	wg.Wait()
}
