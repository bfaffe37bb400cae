package testenv

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Refuse is a go-redis hook that fails every command named in Commands
// (lower case, as go-redis names them), alone or in a pipeline, while On:
// a real Redis whose connection is lost at those commands, for tests of
// what a step left half done does. Through a store whose auto-pipeliner
// runs in full duplex, a refused command has already been written: it runs
// in Redis and only its reply is lost (go-redis's hook contract).
type Refuse struct {
	Commands []string
	On       atomic.Bool
	// Refused counts the commands refused so far.
	Refused atomic.Int64
}

// ErrRefused is the error of a refused command.
var ErrRefused = errors.New("refused for the test")

func (r *Refuse) refuses(cmd redis.Cmder) bool {
	if !r.On.Load() || !slices.Contains(r.Commands, cmd.Name()) {
		return false
	}
	r.Refused.Add(1)
	return true
}

func (r *Refuse) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *Refuse) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if r.refuses(cmd) {
			cmd.SetErr(ErrRefused)
			return ErrRefused
		}
		return next(ctx, cmd)
	}
}

func (r *Refuse) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if r.refuses(cmd) {
				cmd.SetErr(ErrRefused)
				return ErrRefused
			}
		}
		return next(ctx, cmds)
	}
}
