package store

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable marks the error of a Redis call that Redis could not serve
// for now: it is unreachable (connection refused or reset, no answer in
// time), it is loading its data after a restart, a cluster has no majority
// or a failover is under way, or every pooled connection is taken. The
// same call may succeed later. Match it with errors.Is; a package that does
// not import store recognises it by its Unavailable method.
//
// Only the errors of a client UnavailableHook is installed on are marked.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string { return "redis unavailable" }

// Unavailable says that the error is one of a dependency that cannot serve
// for now (the API answers 503 with Retry-After).
func (unavailableError) Unavailable() bool { return true }

// marked is a Redis error marked with ErrUnavailable: its message is the
// original's, and errors.Is finds both.
type marked struct{ err error }

func (m marked) Error() string   { return m.err.Error() }
func (m marked) Unwrap() []error { return []error{m.err, ErrUnavailable} }

// UnavailableHook is a go-redis hook (install it with AddHook) that marks
// with ErrUnavailable the errors of calls Redis could not serve for now,
// those of every command of a pipeline included, and, when Timeout is set,
// bounds each call (its dial, retries and pool wait included) by Timeout,
// unless the caller's context ends sooner. A call that runs out of time is
// unavailable too.
type UnavailableHook struct {
	// Timeout bounds each call. Zero: no bound but the caller's context
	// (and go-redis's own dial and read timeouts, per try).
	Timeout time.Duration
}

var _ redis.Hook = UnavailableHook{}

// DialHook leaves dialling alone: a dial's error reaches the call's.
func (h UnavailableHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook bounds and marks one command.
func (h UnavailableHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, h.Timeout)
			defer cancel()
		}
		return markUnavailable(next(ctx, cmd))
	}
}

// ProcessPipelineHook bounds a pipeline and marks its commands' errors.
func (h UnavailableHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, h.Timeout)
			defer cancel()
		}
		err := next(ctx, cmds)
		for _, c := range cmds {
			if cerr := c.Err(); unavailable(cerr) && !errors.Is(cerr, ErrUnavailable) {
				c.SetErr(marked{cerr})
			}
		}
		return markUnavailable(err)
	}
}

// markUnavailable marks err with ErrUnavailable when it says Redis could not
// serve the call for now; any other error is returned as it is.
func markUnavailable(err error) error {
	if !unavailable(err) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return marked{err}
}

// serverBusy are the error replies of a Redis that cannot serve for now:
// loading its data, running a script too long, a cluster without a
// majority or between owners of a slot, a replica without its master or
// one written to during a failover, writes refused while it cannot persist,
// while it is full (maxmemory reached under noeviction) or while too few
// replicas are connected (min-replicas-to-write).
var serverBusy = []string{"LOADING ", "BUSY ", "CLUSTERDOWN ", "MASTERDOWN ", "TRYAGAIN ", "READONLY ", "MISCONF ", "OOM ", "NOREPLICAS "}

// unavailable reports whether err, from a go-redis call, says that Redis
// could not serve it for now. A missing key, a script's own error, a
// refused password and a closed client are not; a caller that gave up
// (context canceled) is not either.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, redis.ErrClosed) || errors.Is(err, context.Canceled) {
		return false
	}
	for _, p := range serverBusy {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return false // another reply of the server: it answered
	}
	var nerr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, redis.ErrPoolExhausted) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &nerr)
}
