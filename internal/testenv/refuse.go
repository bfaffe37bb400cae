package testenv

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Refuse is a go-redis hook that fails every command named in Commands
// (lower case, as go-redis names them), alone or in a pipeline, while On:
// a real Redis whose connection is lost at those commands, for tests of
// what a step left half done does. With LoseReply the command runs in
// Redis first and only its reply is lost.
//
// Install it on a client whose store does not auto-pipeline
// (store.Config.NoAutoPipeline): the auto-pipeliner answers its callers
// itself, in full duplex after writing the command before any hook runs,
// so a hook's error can race with the real reply (go-redis's hook
// contract).
type Refuse struct {
	Commands  []string
	LoseReply bool
	On        atomic.Bool
	// Refused counts the commands refused so far.
	Refused atomic.Int64
}

// ErrRefused is the error of a refused command.
var ErrRefused = errors.New("refused for the test")

func (r *Refuse) refuses(cmd redis.Cmder) bool {
	return r.On.Load() && slices.Contains(r.Commands, cmd.Name())
}

func (r *Refuse) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *Refuse) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !r.refuses(cmd) {
			return next(ctx, cmd)
		}
		if r.LoseReply {
			if err := next(ctx, cmd); noScript(err) {
				return err // it did not run: go-redis runs it again with EVAL
			}
		}
		r.Refused.Add(1)
		cmd.SetErr(ErrRefused)
		return ErrRefused
	}
}

func (r *Refuse) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, r.refuses) {
			return next(ctx, cmds)
		}
		if r.LoseReply {
			if err := next(ctx, cmds); noScript(err) {
				return err
			}
		}
		r.Refused.Add(1)
		for _, cmd := range cmds {
			cmd.SetErr(ErrRefused)
		}
		return ErrRefused
	}
}

func noScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }
