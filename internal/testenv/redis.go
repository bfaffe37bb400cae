package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server child process.
type RedisServer struct {
	Addr string
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// MissingRedisHint is what a test says when redis-server is not installed.
const MissingRedisHint = "redis-server not found on PATH: the test command ./test.sh installs it " +
	"(as root: apt-get install -y redis-server)"

// StartRedis starts redis-server in dir on a free loopback port and waits until
// it answers PING. Persistence is off: tests want speed, not durability.
func StartRedis(dir string) (*RedisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(MissingRedisHint)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := startRedisOn(bin, dir, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startRedisOn(bin, dir string, port int) (*RedisServer, error) {
	logFile := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no",
		"--logfile", logFile, "--daemonize", "no",
		"--maxclients", "2000")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	s := &RedisServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	s.URL = "redis://" + s.Addr
	go func() { _ = cmd.Wait(); close(s.done) }()

	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.done:
			log, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("redis-server exited at start: %s", log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server did not answer PING in time: %w", err)
		}
		select {
		case <-s.done:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Stop kills the server and waits for it to exit.
func (s *RedisServer) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Client returns a new client of the server.
func (s *RedisServer) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, PoolSize: 64})
}

// Redis starts a redis-server for the test and returns a client; both are
// closed when the test ends.
func Redis(t testing.TB) (*redis.Client, *RedisServer) {
	t.Helper()
	s, err := StartRedis(t.TempDir())
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	c := s.Client()
	t.Cleanup(func() { _ = c.Close(); s.Stop() })
	return c, s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
