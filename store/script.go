package store

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/linkflow/linkflow/internal/luascript"
	"github.com/redis/go-redis/v9"
)

// Every atomic step is a Lua script in lua/, run by its SHA (EVALSHA). A
// script run alone goes through redis.Script.Run, which sends the source
// when Redis does not know the SHA (its script cache is empty after a
// restart or a failover). Scripts queued in a pipeline go through
// scriptPipe, which does the same for each call Redis answered NOSCRIPT.
//
// A script hands Redis strings, never Lua numbers: Redis 7.0 renders every
// number argument of redis.call with snprintf("%.17g"), which cost about half
// a microsecond each, as much as a small command. Integers a script computes
// go through string.format('%d', n), and constants are written as strings
// (delivery_failed_page.lua, a page of an operator's list, still computes
// its range in Lua numbers).

//go:embed lua/*.lua
var luaFS embed.FS

func script(name string) *redis.Script { return luascript.Load(luaFS, name) }

var (
	createLinkScript  = script("create_link")
	claimLinkScript   = script("claim_link")
	beginRunScript    = script("begin_run")
	updateLinkScript  = script("update_link")
	renewLeaseScript  = script("renew_lease")
	finishLinkScript  = script("finish_link")
	badCodeScript     = script("bad_code")
	traceAppendScript = script("trace_append")
	replacePwdScript  = script("replace_password")
	askPwdScript      = script("ask_password")
	pruneLinkScript   = script("prune_link")
	orgUpdateScript   = script("org_update")
)

// runStrings runs a script alone and flattens its array reply into strings;
// what names the step in errors.
func (s *Store) runStrings(ctx context.Context, sc *redis.Script, what string, keys []string, args ...any) ([]string, error) {
	res, err := sc.Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := replyStrings(res)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// replyStrings flattens a script's array reply into strings.
func replyStrings(v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected script reply %T", v)
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		switch x := e.(type) {
		case string:
			out[i] = x
		case nil:
		default:
			out[i] = fmt.Sprint(x)
		}
	}
	return out, nil
}

// scriptPipe is a pipeline that runs scripts too. On a store that
// auto-pipelines, its commands go straight into the shared batches (the
// auto-pipeliner answers later, in order); otherwise into a pipeline of its
// own that Exec sends in one round trip. Either way, a script call Redis
// answered NOSCRIPT then runs again alone with its source. Only those calls
// run again: every other command already took effect, so running the whole
// pipeline again could do some twice (on Cluster, one node may have lost its
// cache and not the others).
//
// It offers only the commands its callers need, each of them judged by
// Exec: an auto-pipeliner answers each command on its own, and an error
// nobody reads (an HGETALL's, whose value then reads as empty) would pass
// for an answer.
type scriptPipe struct {
	c     redis.Cmdable   // the pipeline, or the auto-pipeliner
	pipe  redis.Pipeliner // nil when auto-pipelining
	rdb   redis.UniversalClient
	calls []scriptCall
	// own are the commands queued while auto-pipelining, which Exec judges
	// too (a pipeline judges its own).
	own []redis.Cmder
}

type scriptCall struct {
	script *redis.Script
	cmd    *redis.Cmd
	keys   []string
	args   []any
}

func (s *Store) pipeline() *scriptPipe {
	if s.auto {
		return &scriptPipe{c: s.rdb, rdb: s.rdb}
	}
	pipe := s.rdb.Pipeline()
	return &scriptPipe{c: pipe, pipe: pipe, rdb: s.rdb}
}

// Script queues a script call; its reply is in the returned command after
// Exec.
func (p *scriptPipe) Script(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := sc.EvalSha(ctx, p.c, keys, args...)
	p.calls = append(p.calls, scriptCall{script: sc, cmd: cmd, keys: keys, args: args})
	return cmd
}

// HGetAll, ZAddXXCh, ZRem and HDel queue their command.
func (p *scriptPipe) HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd {
	return queued(p, p.c.HGetAll(ctx, key))
}

// ZAddXXCh updates existing members only (ZADD XX) and answers how many it
// changed (renewed).
func (p *scriptPipe) ZAddXXCh(ctx context.Context, key string, members ...redis.Z) *redis.IntCmd {
	return queued(p, p.c.ZAddArgs(ctx, key, redis.ZAddArgs{XX: true, Ch: true, Members: members}))
}
func (p *scriptPipe) ZRem(ctx context.Context, key string, members ...any) *redis.IntCmd {
	return queued(p, p.c.ZRem(ctx, key, members...))
}
func (p *scriptPipe) HDel(ctx context.Context, key string, fields ...string) *redis.IntCmd {
	return queued(p, p.c.HDel(ctx, key, fields...))
}

// queued has Exec judge cmd when auto-pipelining.
func queued[C redis.Cmder](p *scriptPipe, cmd C) C {
	if p.pipe == nil {
		p.own = append(p.own, cmd)
	}
	return cmd
}

// Exec runs the pipeline (or waits for the script calls' answers), then
// each script call that found no script again alone. It returns the first
// error other than redis.Nil of any command; each command keeps its own.
func (p *scriptPipe) Exec(ctx context.Context) error {
	cmds := p.own
	if p.pipe != nil {
		cmds, _ = p.pipe.Exec(ctx)
	}
	for _, c := range p.calls {
		if luascript.IsNoScript(c.cmd.Err()) {
			again := c.script.Run(ctx, p.rdb, c.keys, c.args...)
			c.cmd.SetVal(again.Val())
			c.cmd.SetErr(again.Err())
		}
		if p.pipe == nil {
			cmds = append(cmds, c.cmd)
		}
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}
