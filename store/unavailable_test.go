package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// replyError is an error reply of a Redis server, as go-redis returns one.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// The hook marks what says Redis cannot serve for now, and nothing else.
func TestUnavailableHookClassifies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{replyError("LOADING Redis is loading the dataset in memory"), true},
		{replyError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."), true},
		{replyError("CLUSTERDOWN The cluster is down"), true},
		{replyError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{replyError("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{replyError("READONLY You can't write against a read only replica."), true},
		{replyError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."), true},
		{replyError("OOM command not allowed when used memory > 'maxmemory'."), true},
		{replyError("NOREPLICAS Not enough good replicas to write."), true},
		{fmt.Errorf("claim link: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{io.EOF, true},
		{context.DeadlineExceeded, true},
		{redis.ErrPoolTimeout, true},
		{replyError("BUSYGROUP Consumer Group name already exists"), false},
		{replyError("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{replyError("NOSCRIPT No matching script. Please use EVAL."), false},
		{replyError("WRONGPASS invalid username-password pair or user is disabled."), false},
		{redis.Nil, false},
		{redis.ErrClosed, false},
		{context.Canceled, false},
		{errors.New("fenced"), false},
		{nil, false},
	} {
		hook := store.UnavailableHook{}.ProcessHook(func(context.Context, redis.Cmder) error { return tt.err })
		err := hook(context.Background(), redis.NewStatusCmd(context.Background(), "PING"))
		if got := errors.Is(err, store.ErrUnavailable); got != tt.want {
			t.Errorf("%v: marked %v, want %v", tt.err, got, tt.want)
		}
		if tt.err != nil && (err.Error() != tt.err.Error() || !errors.Is(err, tt.err)) {
			t.Errorf("%v: the mark changed the error: %v", tt.err, err)
		}
		var u interface{ Unavailable() bool }
		if got := errors.As(err, &u) && u.Unavailable(); got != tt.want {
			t.Errorf("%v: Unavailable() %v, want %v", tt.err, got, tt.want)
		}
	}
}

// A Redis that stopped: commands and every command of a pipeline fail
// marked, at once; a Redis that hangs (SIGSTOP): the hook's Timeout bounds
// the call, retries included.
func TestUnavailableHookOnAStoppedRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, srv := testenv.RedisSingle(t)
	rdb, err := store.DialRedis(srv.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	rdb.AddHook(store.UnavailableHook{Timeout: 300 * time.Millisecond})
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a missing key: %v", err)
	}

	// Hanging: the call ends after the hook's Timeout, not go-redis's read
	// timeout (3 s) times its retries.
	if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = rdb.Get(ctx, "k").Err()
	took := time.Since(start)
	_ = syscall.Kill(srv.Pid(), syscall.SIGCONT)
	if !errors.Is(err, store.ErrUnavailable) || took > 2*time.Second {
		t.Fatalf("a hanging Redis: %v after %s", err, took)
	}
	t.Logf("a hanging Redis: %v after %s", err, took.Round(time.Millisecond))

	srv.Kill()
	start = time.Now()
	err = rdb.Get(ctx, "k").Err()
	if !errors.Is(err, store.ErrUnavailable) || time.Since(start) > time.Second {
		t.Fatalf("a stopped Redis: %v after %s", err, time.Since(start))
	}
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "a")
		p.Get(ctx, "b")
		return nil
	})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a pipeline: %v", err)
	}
	for _, c := range cmds {
		if !errors.Is(c.Err(), store.ErrUnavailable) {
			t.Fatalf("a pipeline's %v: %v", c.Args(), c.Err())
		}
	}
}

// Ping answers within its caller's deadline even on a store whose
// auto-pipeliner runs full duplex (as the workers' does), so /readyz says
// "redis" at once while Redis hangs.
func TestPingHonoursItsDeadlineWhileRedisHangs(t *testing.T) {
	t.Parallel()
	_, srv := testenv.RedisSingle(t)
	rdb, err := store.DialRedis(srv.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	kr, err := store.ParseKeyring(store.GenerateKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr, FullDuplex: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(srv.Pid(), syscall.SIGCONT) }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = st.Ping(ctx)
	if took := time.Since(start); err == nil || took > 1500*time.Millisecond {
		t.Fatalf("Ping while Redis hangs: %v after %s", err, took)
	}
}
