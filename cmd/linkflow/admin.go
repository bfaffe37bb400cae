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

	"golang.org/x/crypto/bcrypt"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// adminStore connects to Redis only: administration needs no NATS.
func adminStore(ctx context.Context, c *common) (*store.Store, func(), error) {
	if c.encryptionKeys == "" {
		return nil, nil, errors.New("--encryption-keys (LINKFLOW_ENCRYPTION_KEYS) is required")
	}
	kr, err := store.ParseKeyring(c.encryptionKeys)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := store.DialRedis(c.redisURL, c.redisCluster)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr})
	if err != nil {
		return nil, nil, err
	}
	if err := st.Ping(ctx); err != nil {
		return nil, nil, fmt.Errorf("redis at %s: %w", c.redisURL, err)
	}
	return st, func() { _ = rdb.Close() }, nil
}

func adminFlags(name string) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c := &common{}
	fs.StringVar(&c.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL")
	fs.BoolVar(&c.redisCluster, "redis-cluster", false, "--redis-url names a Redis Cluster (its seed nodes)")
	fs.StringVar(&c.encryptionKeys, "encryption-keys", "", "AES-256 keys sealing secrets at rest: id:base64key,...")
	return fs, c
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

func runOrgs(ctx context.Context, args []string) error {
	sub, rest, err := subcommand(args, "orgs", "create", "update", "rotate-webhook-secret")
	if err != nil {
		return err
	}
	fs, c := adminFlags("orgs " + sub)
	name := fs.String("name", "", "organization name (create; required)")
	orgID := fs.String("org", "", "organization id (update, rotate-webhook-secret; required)")
	overlap := fs.Duration("overlap", 24*time.Hour, "rotate-webhook-secret: how long the old secret keeps signing too")
	appSchemes := fs.String("app-schemes", "", "update: comma-separated custom URL schemes (myapp) the organization's return URLs may use besides https; empty clears")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	st, closeFn, err := adminStore(ctx, c)
	if err != nil {
		return err
	}
	defer closeFn()
	if sub == "update" {
		if *orgID == "" {
			return errors.New("--org is required")
		}
		if !flagGiven(fs, "app-schemes") {
			return errors.New("nothing to update: give --app-schemes")
		}
		schemes := splitList(*appSchemes)
		if err := st.UpdateOrg(ctx, *orgID, linkflow.OrgUpdate{AppSchemes: &schemes}); err != nil {
			return fmt.Errorf("update %s: %w", *orgID, err)
		}
		fmt.Printf("organization %s: app schemes %q\n", *orgID, splitList(*appSchemes))
		return nil
	}
	if sub == "rotate-webhook-secret" {
		if *orgID == "" {
			return errors.New("--org is required")
		}
		secret, err := st.RotateWebhookSecret(ctx, *orgID, *overlap)
		if err != nil {
			return fmt.Errorf("rotate the webhook secret of %s: %w", *orgID, err)
		}
		fmt.Printf("webhook secret %s\n\nWithin seconds webhooks are signed with this secret and, for %s, also with the old one.\n", secret, *overlap)
		return nil
	}
	if *name == "" {
		return errors.New("--name is required")
	}
	org, err := st.CreateOrg(ctx, "", *name, "")
	if err != nil {
		return err
	}
	key, rec, err := st.CreateAPIKey(ctx, org.ID, "default", "", nil)
	if err != nil {
		return err
	}
	fmt.Printf("organization  %s\napi key id    %s\napi key       %s\nwebhook secret %s\n\nThe API key and webhook secret are shown once; store them now.\n",
		org.ID, rec.ID, key, org.WebhookSecrets[0])
	return nil
}

func runKeys(ctx context.Context, args []string) error {
	sub, rest, err := subcommand(args, "keys", "create", "revoke", "rotate-data", "generate")
	if err != nil {
		return err
	}
	if sub == "generate" {
		fmt.Println(store.GenerateKey("k" + strings.ReplaceAll(linkflow.NewLeaseToken()[:6], "-", "")))
		return nil
	}
	fs, c := adminFlags("keys " + sub)
	org := fs.String("org", "", "organization id")
	name := fs.String("name", "", "a name for the key")
	scopes := fs.String("scopes", "", "comma-separated scopes (default: all): links:read,links:write,connections:read,connections:secrets")
	keyID := fs.String("key-id", "", "the id of the key to revoke (key_...)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	st, closeFn, err := adminStore(ctx, c)
	if err != nil {
		return err
	}
	defer closeFn()
	switch sub {
	case "create":
		if *org == "" {
			return errors.New("--org is required")
		}
		var sc []string
		for _, s := range strings.Split(*scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				sc = append(sc, s)
			}
		}
		key, rec, err := st.CreateAPIKey(ctx, *org, *name, "", sc)
		if err != nil {
			return err
		}
		fmt.Printf("api key id  %s\napi key     %s\nscopes      %s\n\nThe key is shown once; store it now.\n", rec.ID, key, strings.Join(rec.Scopes, " "))
	case "revoke":
		if *keyID == "" {
			return errors.New("--key-id is required")
		}
		if err := st.RevokeAPIKey(ctx, *org, *keyID); err != nil {
			return fmt.Errorf("revoke %s: %w", *keyID, err)
		}
		fmt.Printf("revoked %s\n", *keyID)
	case "rotate-data":
		n, err := st.RotateData(ctx)
		fmt.Printf("re-sealed %d values with the first key\n", n)
		if err != nil {
			return fmt.Errorf("some values could not be re-sealed (run it again after fixing the keys): %w", err)
		}
	}
	return nil
}

func runUsers(ctx context.Context, args []string) error {
	sub, rest, err := subcommand(args, "users", "create", "revoke-tokens")
	if err != nil {
		return err
	}
	if sub == "revoke-tokens" {
		return revokeUserTokens(ctx, rest)
	}
	fs, c := adminFlags("users create")
	email := fs.String("email", "", "the user's email (required)")
	orgs := fs.String("org", "", "comma-separated organization ids the user acts for (required)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (first line)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *email == "" || *orgs == "" || !*fromStdin {
		return errors.New("--email, --org and --password-stdin are required")
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return errors.New("the password must have at least 8 characters")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	st, closeFn, err := adminStore(ctx, c)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := st.CreateUser(ctx, linkflow.User{Email: *email, PasswordHash: string(hash), OrgIDs: strings.Split(*orgs, ",")}); err != nil {
		return err
	}
	fmt.Printf("user %s created\n", *email)
	return nil
}

// revokeUserTokens is `linkflow users revoke-tokens --email E`: every access
// token the user holds stops working at once.
func revokeUserTokens(ctx context.Context, args []string) error {
	fs, c := adminFlags("users revoke-tokens")
	email := fs.String("email", "", "the user's email (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" {
		return errors.New("--email is required")
	}
	st, closeFn, err := adminStore(ctx, c)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := st.RevokeUserTokens(ctx, *email); err != nil {
		return fmt.Errorf("revoke the tokens of %s: %w", *email, err)
	}
	fmt.Printf("revoked every access token of %s\n", *email)
	return nil
}
