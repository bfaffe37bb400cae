// Command linkflow runs linkflow: the HTTP API (api), workers (worker), the
// webhook dispatcher (dispatcher), or everything in one process with an
// embedded NATS server and a redis-server child (dev). It also administers
// organizations, API keys and users, and drives load (bench).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

const usage = `linkflow: an event-driven link workflow service

Usage:
  linkflow dev                 everything in one process (embedded NATS, a redis-server child)
  linkflow api                 the HTTP API
  linkflow worker              a worker: runs claimed links
  linkflow dispatcher          the webhook dispatcher
  linkflow listen              print a deployment's events as they happen (dev's, unless told)
  linkflow orgs <command>      create, update, rotate-webhook-secret
  linkflow keys <command>      create, revoke, generate (an encryption key), rotate-data
  linkflow users <command>     create, revoke-tokens
  linkflow status              backlog, dead letters, failures, readiness (--probe api=HOST:PORT,... --json)
  linkflow dlq <command>       list, replay (--seq N | --all): the dead letters
  linkflow bench               load generator
  linkflow sandbox-provider    the sandbox served over the remote provider protocol

Every flag has an environment variable: --redis-url is LINKFLOW_REDIS_URL.
Against linkflow dev, admin commands take its --data-dir (LINKFLOW_DATA_DIR) for its Redis and keys.
Run "linkflow <command> -h" for a command's flags.
`

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "linkflow:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first signal starts a graceful stop, which may wait for sessions
	// (--shutdown-grace); a second one ends the process at once, with the
	// status a shell gives a process the signal killed. Both are caught
	// here, in order: a second signal can never find the first one's
	// handling half done.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		cancel()
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "linkflow: a second %s: stopping at once\n", sig)
		code := 128 + 15 // SIGTERM
		if sig == os.Interrupt {
			code = 128 + 2
		}
		os.Exit(code)
	}()
	// Commands report Redis's errors themselves; a server gives go-redis
	// its logger (runProcess, runSandboxProvider).
	redis.SetLogger(redisLogger{zap.NewNop()})
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest)
	case "api":
		return runAPI(ctx, rest)
	case "worker":
		return runWorker(ctx, rest)
	case "dispatcher":
		return runDispatcher(ctx, rest)
	case "orgs", "keys", "users", "status", "dlq":
		return runAdmin(ctx, cmd, rest)
	case "listen":
		return runListen(ctx, rest)
	case "bench":
		return runBench(ctx, rest)
	case "sandbox-provider":
		return runSandboxProvider(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
