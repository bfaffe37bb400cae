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
	"github.com/linkflow/linkflow/store"
)

// adminCommand parses an admin command's flags (Redis and keys, plus its
// own), connects to Redis only (administration needs no NATS) and runs it.
func adminCommand(ctx context.Context, name string, args []string, register func(*flag.FlagSet),
	run func(*admin.Admin, *flag.FlagSet) error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c := &common{}
	fs.StringVar(&c.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL")
	fs.BoolVar(&c.redisCluster, "redis-cluster", false, "--redis-url names a Redis Cluster (its seed nodes)")
	fs.StringVar(&c.redisPrefix, "redis-prefix", "lf:", "prefix of every Redis key")
	fs.StringVar(&c.encryptionKeys, "encryption-keys", "", "AES-256 keys sealing secrets at rest: id:base64key,...")
	register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.encryptionKeys == "" {
		return errors.New("--encryption-keys (LINKFLOW_ENCRYPTION_KEYS) is required")
	}
	kr, err := store.ParseKeyring(c.encryptionKeys)
	if err != nil {
		return err
	}
	rdb, err := store.DialRedis(c.redisURL, c.redisCluster)
	if err != nil {
		return err
	}
	defer rdb.Close()
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr, Prefix: c.redisPrefix})
	if err != nil {
		return err
	}
	if err := st.Ping(ctx); err != nil {
		return fmt.Errorf("redis at %s: %w", store.RedactURLs(c.redisURL), err)
	}
	return run(&admin.Admin{Store: st, Out: os.Stdout}, fs)
}

func subcommand(args []string, what string, cmds ...string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("linkflow %s: want one of %s", what, strings.Join(cmds, ", "))
	}
	for _, c := range cmds {
		if args[0] == c {
			return c, args[1:], nil
		}
	}
	return "", nil, fmt.Errorf("linkflow %s %s: unknown; want one of %s", what, args[0], strings.Join(cmds, ", "))
}

// required fails naming the first flag of names that fs was not given.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f == nil || f.Value.String() == "" || f.Value.String() == "false" {
			return fmt.Errorf("--%s is required", n)
		}
	}
	return nil
}

func runOrgs(ctx context.Context, args []string) error {
	sub, rest, err := subcommand(args, "orgs", "create", "update", "rotate-webhook-secret")
	if err != nil {
		return err
	}
	var name, org, schemes, origins string
	var overlap time.Duration
	return adminCommand(ctx, "orgs "+sub, rest, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "organization name (create; required)")
		fs.StringVar(&org, "org", "", "organization id (update, rotate-webhook-secret; required)")
		fs.DurationVar(&overlap, "overlap", 24*time.Hour, "rotate-webhook-secret: how long the old secret keeps signing too")
		fs.StringVar(&schemes, "app-schemes", "", "update: comma-separated custom URL schemes (myapp) the organization's return URLs may use besides https; empty clears")
		fs.StringVar(&origins, "allowed-origins", "", "update: comma-separated origins (https://app.example.com) whose pages may embed the hosted page with the web drop-in; empty clears")
	}, func(a *admin.Admin, fs *flag.FlagSet) error {
		switch sub {
		case "update":
			if err := required(fs, "org"); err != nil {
				return err
			}
			if !flagGiven(fs, "app-schemes") && !flagGiven(fs, "allowed-origins") {
				return errors.New("nothing to update: give --app-schemes or --allowed-origins")
			}
			if flagGiven(fs, "app-schemes") {
				if err := a.SetAppSchemes(ctx, org, splitList(schemes)); err != nil {
					return err
				}
			}
			if flagGiven(fs, "allowed-origins") {
				return a.SetAllowedOrigins(ctx, org, splitList(origins))
			}
			return nil
		case "rotate-webhook-secret":
			if err := required(fs, "org"); err != nil {
				return err
			}
			return a.RotateWebhookSecret(ctx, org, overlap)
		}
		if err := required(fs, "name"); err != nil {
			return err
		}
		return a.CreateOrg(ctx, name)
	})
}

func runKeys(ctx context.Context, args []string) error {
	sub, rest, err := subcommand(args, "keys", "create", "revoke", "rotate-data", "generate")
	if err != nil {
		return err
	}
	if sub == "generate" {
		(&admin.Admin{Out: os.Stdout}).GenerateKey()
		return nil
	}
	var org, name, scopes, keyID string
	return adminCommand(ctx, "keys "+sub, rest, func(fs *flag.FlagSet) {
		fs.StringVar(&org, "org", "", "organization id")
		fs.StringVar(&name, "name", "", "a name for the key")
		fs.StringVar(&scopes, "scopes", "", "comma-separated scopes (default: all): links:read,links:write,connections:read,connections:secrets")
		fs.StringVar(&keyID, "key-id", "", "the id of the key to revoke (key_...)")
	}, func(a *admin.Admin, fs *flag.FlagSet) error {
		switch sub {
		case "create":
			if err := required(fs, "org"); err != nil {
				return err
			}
			return a.CreateAPIKey(ctx, org, name, splitList(scopes))
		case "revoke":
			if err := required(fs, "key-id"); err != nil {
				return err
			}
			return a.RevokeAPIKey(ctx, org, keyID)
		}
		return a.RotateData(ctx)
	})
}

func runUsers(ctx context.Context, args []string) error {
	sub, rest, err := subcommand(args, "users", "create", "revoke-tokens")
	if err != nil {
		return err
	}
	var email, orgs string
	var fromStdin bool
	return adminCommand(ctx, "users "+sub, rest, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email (required)")
		if sub == "create" {
			fs.StringVar(&orgs, "org", "", "comma-separated organization ids the user acts for (required)")
			fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input (first line)")
		}
	}, func(a *admin.Admin, fs *flag.FlagSet) error {
		if sub == "revoke-tokens" {
			if err := required(fs, "email"); err != nil {
				return err
			}
			return a.RevokeUserTokens(ctx, email)
		}
		if err := required(fs, "email", "org", "password-stdin"); err != nil {
			return err
		}
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return a.CreateUser(ctx, email, splitList(orgs), strings.TrimRight(line, "\r\n"))
	})
}
