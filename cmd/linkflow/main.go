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
)

const usage = `linkflow: an event-driven link workflow service

Usage:
  linkflow dev                 everything in one process (embedded NATS, a redis-server child)
  linkflow api                 the HTTP API
  linkflow worker              a worker: runs claimed links
  linkflow dispatcher          the webhook dispatcher
  linkflow orgs create --name NAME
  linkflow orgs update --org ORG [--app-schemes myapp,other] [--allowed-origins https://app.example.com,...]
  linkflow orgs rotate-webhook-secret --org ORG [--overlap 24h]
  linkflow keys create --org ORG [--name N] [--scopes s1,s2]
  linkflow keys revoke --key-id KEY_ID
  linkflow keys generate       print a new encryption key for LINKFLOW_ENCRYPTION_KEYS
  linkflow keys rotate-data    re-seal secrets with the first encryption key
  linkflow users create --email E --password-stdin --org ORG   (again: changes the user; its tokens stop working)
  linkflow users revoke-tokens --email E
  linkflow status [--probe api=HOST:PORT,...] [--json]   backlog, dead letters, failures, readiness
  linkflow dlq list | replay (--seq N | --all)           the dead letters
  linkflow bench               load generator (see linkflow bench -h)
  linkflow sandbox-provider    the sandbox served over the remote provider protocol

Every flag has an environment variable: --redis-url is LINKFLOW_REDIS_URL.
Run "linkflow <command> -h" for a command's flags.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "linkflow:", err)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	case "orgs":
		return runOrgs(ctx, rest)
	case "keys":
		return runKeys(ctx, rest)
	case "users":
		return runUsers(ctx, rest)
	case "status", "dlq":
		return runOps(ctx, cmd, rest)
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
