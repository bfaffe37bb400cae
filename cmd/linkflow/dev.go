package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/store"
)

// devOrgID is the organization dev creates for the laptop.
const devOrgID = "org_dev"

// devState is what dev keeps in its data directory between runs.
type devState struct {
	EncryptionKey string `json:"encryptionKey"`
	APIKey        string `json:"apiKey"`
	WebhookSecret string `json:"webhookSecret"`
}

// runDev runs everything in one process: an embedded NATS server with
// JetStream (unless --nats-url is given), a redis-server child (unless
// --redis-url is given), the API, a worker, the sweeper and the dispatcher.
func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var c common
	var af apiFlags
	var wf workerFlags
	var df dispatcherFlags
	c.register(fs, "dev")
	af.register(fs, "127.0.0.1:8080")
	wf.register(fs)
	df.register(fs)
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS server URL; empty runs an embedded NATS server with JetStream")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis URL; empty starts a redis-server child process")
	dataDir := fs.String("data-dir", ".linkflow", "where dev keeps JetStream and Redis data, and its generated keys")
	natsPort := fs.Int("nats-port", 4222, "port of the embedded NATS server (-1: any free port)")
	redisPort := fs.Int("redis-port", 6390, "port of the redis-server child (0: any free port)")
	devKey := fs.String("dev-api-key", "", "API key of the development organization (at least 16 characters; default: generated once and kept in the data dir)")
	devSecret := fs.String("dev-webhook-secret", "", "webhook signing secret of the development organization (whsec_...; default: generated once)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.logFormat == "json" && os.Getenv(envName("log-format")) == "" && !flagGiven(fs, "log-format") {
		c.logFormat = "console"
	}
	df.allowPrivate = true
	log, err := newLogger(c.logLevel, c.logFormat)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	state, err := loadDevState(*dataDir)
	if err != nil {
		return err
	}
	if *devKey != "" {
		if len(*devKey) < store.MinAPIKeyLength {
			return fmt.Errorf("LINKFLOW_DEV_API_KEY (--dev-api-key) must have at least %d characters, so it cannot be guessed", store.MinAPIKeyLength)
		}
		state.APIKey = *devKey
	}
	if *devSecret != "" {
		if !store.ValidWebhookSecret(*devSecret) {
			return errors.New("LINKFLOW_DEV_WEBHOOK_SECRET must be whsec_ followed by base64")
		}
		state.WebhookSecret = *devSecret
	}
	if err := saveDevState(*dataDir, state); err != nil {
		return err
	}
	keys := c.encryptionKeys
	if keys == "" {
		keys = state.EncryptionKey
	}
	kr, err := store.ParseKeyring(keys)
	if err != nil {
		return err
	}

	if c.natsURL == "" {
		ns, err := embedded.StartNATS(embedded.NATSOptions{Dir: filepath.Join(*dataDir, "jetstream"), Port: *natsPort})
		if err != nil {
			return fmt.Errorf("embedded NATS (port %d; choose another with --nats-port): %w", *natsPort, err)
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		c.natsURL = ns.ClientURL()
		log.Info("embedded NATS with JetStream", zap.String("url", c.natsURL))
	}
	if c.redisURL == "" {
		rs, err := embedded.StartRedis(embedded.RedisOptions{Dir: filepath.Join(*dataDir, "redis"), Port: *redisPort, AppendOnly: true})
		if err != nil {
			return fmt.Errorf("redis-server child (port %d; choose another with --redis-port): %w", *redisPort, err)
		}
		defer rs.Stop()
		c.redisURL = rs.URL
		log.Info("redis-server child", zap.String("url", c.redisURL))
	}

	d, err := connect(ctx, &c, log, kr)
	if err != nil {
		return err
	}
	defer d.close()
	if _, err := d.store.CreateOrg(ctx, devOrgID, "Development", state.WebhookSecret); err != nil {
		return err
	}
	if err := d.store.UpdateOrg(ctx, devOrgID, linkflow.OrgUpdate{WebhookSecret: state.WebhookSecret}); err != nil {
		return err
	}
	if _, _, err := d.store.CreateAPIKey(ctx, devOrgID, "dev", state.APIKey, nil); err != nil {
		return err
	}
	ss, err := assemble(d, &c, role{api: &af, worker: &wf, dispatcher: &df, dev: true})
	if err != nil {
		return err
	}
	return ss.Run(ctx, func() { printDevBanner(af, state) })
}

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func loadDevState(dir string) (*devState, error) {
	st := &devState{}
	b, err := os.ReadFile(filepath.Join(dir, "dev.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("%s/dev.json: %w", dir, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if st.EncryptionKey == "" {
		st.EncryptionKey = store.GenerateKey("dev1")
	}
	if st.APIKey == "" {
		st.APIKey = store.NewAPIKey()
	}
	if st.WebhookSecret == "" {
		st.WebhookSecret = store.NewWebhookSecret()
	}
	return st, nil
}

func saveDevState(dir string, st *devState) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(filepath.Join(dir, "dev.json"), b, 0o600)
}

func printDevBanner(af apiFlags, st *devState) {
	base := strings.TrimRight(af.publicURL, "/")
	fmt.Printf(`
linkflow dev is running
  API             %s
  organization    %s
  API key         %s
  webhook secret  %s

Try it:
  curl -s %s/v1/links -H "Authorization: Bearer %s" -H "Content-Type: application/json" \
    -d '{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}]}'

`, base, devOrgID, st.APIKey, st.WebhookSecret, base, st.APIKey)
}
