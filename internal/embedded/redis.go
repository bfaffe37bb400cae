package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// MissingRedis explains what to do when redis-server is not installed.
const MissingRedis = "redis-server not found on PATH. Install it (Debian: apt-get install -y redis-server), " +
	"or run the README's commands, which install it when run as root"

// RedisOptions configure a redis-server child.
type RedisOptions struct {
	// Dir holds the server's data and log. Required.
	Dir string
	// Port to listen on (loopback only). 0 picks a free port.
	Port int
	// AppendOnly turns on the append-only file (fsync every second), as dev
	// does; tests leave persistence off for speed.
	AppendOnly bool
	// Cluster starts the server as a Redis Cluster node (cluster-enabled,
	// its node table in Dir). It serves no keys until a cluster is formed:
	// StartRedisCluster does that.
	Cluster bool
	// ClusterPort is a cluster node's bus port. 0 picks a free port (not
	// Port+10000, which may be taken or past 65535).
	ClusterPort int
}

// Redis is a running redis-server child process.
type Redis struct {
	Addr string
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// StartRedis starts redis-server and waits until it answers PING.
func StartRedis(opts RedisOptions) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(MissingRedis)
	}
	// redis-server changes into --dir before it opens its log file: paths
	// must not be relative.
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	tries := 1
	if opts.Port == 0 {
		tries = 5
	}
	var lastErr error
	for range tries {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		r, err := startRedis(bin, opts, port)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startRedis(bin string, opts RedisOptions, port int) (*Redis, error) {
	logFile := filepath.Join(opts.Dir, "redis-"+strconv.Itoa(port)+".log")
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", opts.Dir,
		"--logfile", logFile, "--daemonize", "no", "--save", "", "--maxclients", "4000"}
	if opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if opts.Cluster {
		bus := opts.ClusterPort
		if bus == 0 {
			var err error
			if bus, err = freePort(); err != nil {
				return nil, err
			}
		}
		args = append(args, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", filepath.Join(opts.Dir, "nodes-"+strconv.Itoa(port)+".conf"))
	}
	cmd := exec.Command(bin, args...)
	// Its own process group: a Ctrl-C to linkflow must not kill Redis before
	// linkflow has stopped using it. But when linkflow (or a test binary)
	// dies without stopping it, Redis goes too instead of lingering.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{}), log: logFile}
	r.URL = "redis://" + r.Addr
	go func() { _ = cmd.Wait(); close(r.done) }()

	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			// Whatever answered must be the server just started: when the port
			// was taken, the child failed to bind and another Redis (another
			// dev's, with other keys) answers instead.
			if err := r.checkOwn(c); err != nil {
				r.Stop()
				return nil, err
			}
			return r, nil
		}
		select {
		case <-r.done:
			out, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("redis-server exited at start: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("redis-server did not answer PING: %w", err)
		}
		select {
		case <-r.done:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// checkOwn checks that the Redis answering on r.Addr is the child process,
// by the process id Redis reports.
func (r *Redis) checkOwn(c *redis.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("redis-server on %s: %w", r.Addr, err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok && v == strconv.Itoa(r.Pid()) {
			return nil
		}
	}
	return fmt.Errorf("another Redis already answers on %s, not the redis-server linkflow started", r.Addr)
}

// Pid is the redis-server's process id.
func (r *Redis) Pid() int { return r.cmd.Process.Pid }

// Stop asks Redis to shut down (it flushes its append-only file) and waits;
// after 10 s it kills it.
func (r *Redis) Stop() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// Kill kills Redis at once, as a crash would.
func (r *Redis) Kill() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
