package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/linkflow/linkflow/admin"
)

// adminCmd is one admin command: what it does, its own flags, and what it
// runs with them. Every one but "keys generate" also takes the Redis and
// encryption key flags (adminCommand).
type adminCmd struct {
	name, help string
	required   string // comma-separated flags that must be given
	flags      func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error
	offline    bool // needs no Redis
	// reading commands read what they can and say what they could not: a
	// Redis that does not answer is no error, the encryption keys optional
	// (admin.OpenConfig.Reading).
	reading bool
}

var adminCmds = []adminCmd{
	{name: "orgs create", required: "name", help: "create an organization; prints its id, an API key and a webhook secret (once)",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error {
			name := fs.String("name", "", "organization name (required)")
			return func(ctx context.Context, a *admin.Admin) error { return a.CreateOrg(ctx, *name) }
		}},
	{name: "orgs update", required: "org", help: "change an organization: the URL schemes its return URLs may use, the origins that may embed its hosted page",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error {
			org := fs.String("org", "", "organization id (required)")
			schemes := fs.String("app-schemes", "", "comma-separated custom URL schemes (myapp) the organization's return URLs may use besides https; empty clears")
			origins := fs.String("allowed-origins", "", "comma-separated origins (https://app.example.com) whose pages may embed the hosted page with the web drop-in; empty clears")
			return func(ctx context.Context, a *admin.Admin) error {
				if !explicit(fs, "app-schemes") && !explicit(fs, "allowed-origins") {
					return errors.New("nothing to update: give --app-schemes or --allowed-origins")
				}
				var s, o *[]string
				if explicit(fs, "app-schemes") {
					list := splitList(*schemes)
					s = &list
				}
				if explicit(fs, "allowed-origins") {
					list := splitList(*origins)
					o = &list
				}
				return a.UpdateOrg(ctx, *org, s, o)
			}
		}},
	{name: "orgs rotate-webhook-secret", required: "org", help: "give an organization a new webhook secret; the old one signs too for --overlap",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error {
			org := fs.String("org", "", "organization id (required)")
			overlap := fs.Duration("overlap", 24*time.Hour, "how long the old secret keeps signing too")
			return func(ctx context.Context, a *admin.Admin) error {
				return a.RotateWebhookSecret(ctx, *org, *overlap)
			}
		}},
	{name: "keys create", required: "org", help: "create an API key of an organization; prints it (once)",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error {
			org := fs.String("org", "", "organization id (required)")
			name := fs.String("name", "", "a name for the key")
			scopes := fs.String("scopes", "", "comma-separated scopes (default: all): links:read,links:write,connections:read,connections:secrets")
			return func(ctx context.Context, a *admin.Admin) error {
				return a.CreateAPIKey(ctx, *org, *name, splitList(*scopes))
			}
		}},
	{name: "keys revoke", required: "key-id", help: "revoke an API key (and the access tokens exchanged for it)",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error {
			id := fs.String("key-id", "", "the id of the key to revoke, key_... (required)")
			return func(ctx context.Context, a *admin.Admin) error { return a.RevokeAPIKey(ctx, "", *id) }
		}},
	{name: "keys generate", offline: true, help: "print a new encryption key for LINKFLOW_ENCRYPTION_KEYS (no Redis needed)",
		flags: func(*flag.FlagSet) func(context.Context, *admin.Admin) error {
			return func(_ context.Context, a *admin.Admin) error { a.GenerateKey(); return nil }
		}},
	{name: "keys rotate-data", help: "re-seal every secret with the first of --encryption-keys",
		flags: func(*flag.FlagSet) func(context.Context, *admin.Admin) error {
			return func(ctx context.Context, a *admin.Admin) error { return a.RotateData(ctx) }
		}},
	{name: "users create", required: "email,org,password-stdin", help: "create a user of organizations, or change one (its tokens stop working); the password comes on stdin",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error {
			email := fs.String("email", "", "the user's email (required)")
			orgs := fs.String("org", "", "comma-separated organization ids the user acts for (required)")
			fs.Bool("password-stdin", false, "read the password from standard input, its first line (required)")
			return func(ctx context.Context, a *admin.Admin) error {
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				return a.CreateUser(ctx, *email, splitList(*orgs), strings.TrimRight(line, "\r\n"))
			}
		}},
	{name: "status", reading: true, help: "backlog, dead letters, failures, failing webhook hosts, and each probed process's /readyz",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error { return opsFlags(fs, "status") }},
	{name: "dlq list", reading: true, help: "the newest dead letters (--limit), oldest of them first",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error { return opsFlags(fs, "dlq list") }},
	{name: "dlq replay", reading: true, help: "send dead letters back to their workers (--seq N or --all) and drop them from the DLQ",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error { return opsFlags(fs, "dlq replay") }},
	{name: "users revoke-tokens", required: "email", help: "make every access token of a user stop working",
		flags: func(fs *flag.FlagSet) func(context.Context, *admin.Admin) error {
			email := fs.String("email", "", "the user's email (required)")
			return func(ctx context.Context, a *admin.Admin) error { return a.RevokeUserTokens(ctx, *email) }
		}},
}

// runAdmin runs "linkflow <group> <command> [flags]": the command's own
// flags, the Redis and encryption key flags (or dev's --data-dir), Redis
// only (administration needs no NATS).
func runAdmin(ctx context.Context, group string, args []string) error {
	var cmd *adminCmd
	for i := range adminCmds {
		switch {
		case adminCmds[i].name == group: // a command without subcommands
			cmd, args = &adminCmds[i], append([]string{group}, args...)
		case len(args) > 0 && adminCmds[i].name == group+" "+args[0]:
			cmd = &adminCmds[i]
		}
	}
	if cmd == nil {
		var b strings.Builder
		fmt.Fprintf(&b, "Usage: linkflow %s <command> [flags]\n\n", group)
		for _, c := range adminCmds {
			if name, ok := strings.CutPrefix(c.name, group+" "); ok {
				fmt.Fprintf(&b, "  %-22s %s\n", name, c.help)
			}
		}
		fmt.Fprintf(&b, "\nRun \"linkflow %s <command> -h\" for a command's flags.\n", group)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Print(b.String())
			return flag.ErrHelp
		}
		fmt.Fprint(os.Stderr, b.String())
		if len(args) == 0 {
			return fmt.Errorf("linkflow %s: which command?", group)
		}
		return fmt.Errorf("linkflow %s: unknown command %q", group, args[0])
	}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	var c common
	dataDir := ""
	if !cmd.offline {
		dirHelp := "a linkflow dev data directory: use that dev's Redis and encryption key (the key unless given; neither with another --redis-url)"
		keysHelp := "AES-256 keys sealing secrets at rest: id:base64key,... (required, unless --data-dir)"
		if cmd.reading {
			dirHelp = "a linkflow dev data directory: use that dev's Redis and NATS (unless given; neither with another --redis-url)"
			keysHelp = "AES-256 keys sealing secrets at rest: id:base64key,... (not needed: this command opens no secret)"
		}
		fs.StringVar(&dataDir, "data-dir", "", dirHelp)
		fs.StringVar(&c.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL")
		fs.BoolVar(&c.redisCluster, "redis-cluster", false, "--redis-url names a Redis Cluster (its seed nodes)")
		fs.StringVar(&c.redisPrefix, "redis-prefix", "lf:", "prefix of every Redis key")
		fs.StringVar(&c.encryptionKeys, "encryption-keys", "", keysHelp)
	}
	run := cmd.flags(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("linkflow %s: unexpected argument %q (flags start with --)", cmd.name, fs.Arg(0))
	}
	for _, n := range splitList(cmd.required) {
		if !explicit(fs, n) {
			return fmt.Errorf("--%s is required (see linkflow %s -h)", n, cmd.name)
		}
	}
	if cmd.offline {
		return run(ctx, &admin.Admin{Out: os.Stdout})
	}
	a, closeFn, err := admin.Open(ctx, admin.OpenConfig{RedisURL: c.redisURL, RedisURLGiven: explicit(fs, "redis-url"),
		RedisCluster: c.redisCluster, RedisPrefix: c.redisPrefix, EncryptionKeys: c.encryptionKeys, DataDir: dataDir,
		Reading: cmd.reading, Out: os.Stdout})
	if err != nil {
		return err
	}
	defer closeFn()
	return run(ctx, a)
}

// explicit reports whether flag name was set, on the command line or by its
// environment variable.
func explicit(fs *flag.FlagSet, name string) bool {
	_, env := os.LookupEnv(envName(name))
	return env || flagGiven(fs, name)
}
