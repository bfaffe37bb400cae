package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/app"
	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/redact"
	"github.com/linkflow/linkflow/store"
)

// devOrgID is the organization dev creates for the laptop.
const devOrgID = "org_dev"

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
	// What dev does differently, as the defaults its help shows.
	setDefault(fs, "log-format", "console")
	setDefault(fs, "webhook-allow-private", "true")
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS server URL; empty runs an embedded NATS server with JetStream")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis URL; empty starts a redis-server child process")
	dataDir := fs.String("data-dir", ".linkflow", "where dev keeps JetStream and Redis data, and its generated keys (admin commands take it too)")
	natsPort := fs.Int("nats-port", 4222, "port of the embedded NATS server (-1: any free port)")
	redisPort := fs.Int("redis-port", 6390, "port of the redis-server child (0: any free port)")
	devKey := fs.String("dev-api-key", "", "API key of the development organization (at least 16 characters; default: generated once and kept in the data dir)")
	devSecret := fs.String("dev-webhook-secret", "", "webhook signing secret of the development organization (whsec_...; default: generated once)")
	devOrigins := fs.String("dev-allowed-origins", "", "comma-separated origins (http://localhost:3000) whose pages may embed the development organization's hosted pages with the web drop-in")
	if err := parseFlags(fs, args, "redis-url", "nats-url"); err != nil {
		return err
	}
	af.publicURL = cmp.Or(af.publicURL, api.PublicURLOf(af.httpAddr))
	log, err := newLogger(c.logLevel, c.logFormat)
	if err != nil {
		return err
	}
	unlock, err := embedded.LockDevDir(*dataDir)
	var noLock *embedded.NoLockError
	switch {
	case errors.As(err, &noLock):
		log.Warn("the data directory is not locked: a second dev on it would not be stopped", zap.Error(noLock.Err),
			zap.String("dir", noLock.Dir))
	case err != nil:
		return err
	}
	defer unlock()
	for _, a := range [][3]string{{af.httpAddr, "the API", "--http-addr"}, {c.metricsAddr, "metrics", "--metrics-addr"}} {
		if a[0] != "" {
			if err := embedded.CheckFree(a[0], a[1], a[2]); err != nil {
				return err
			}
		}
	}
	state, err := embedded.LoadDevState(*dataDir)
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
	var origins *[]string // kept as they are unless given
	if flagGiven(fs, "dev-allowed-origins") || *devOrigins != "" {
		list, err := linkflow.ParseOrigins(splitList(*devOrigins))
		if err != nil {
			return fmt.Errorf("LINKFLOW_DEV_ALLOWED_ORIGINS (--dev-allowed-origins): %w", err)
		}
		origins = &list
	}
	// Given keys are the ones dev seals with, and dev.json keeps them: the
	// admin commands that read it (--data-dir) must seal with them too.
	if state.EncryptionKey, err = devKeys(c.encryptionKeys, state.EncryptionKey); err != nil {
		return err
	}
	kr, err := store.ParseKeyring(state.EncryptionKey)
	if err != nil {
		return err
	}
	servers, err := embedded.StartDevServers(*dataDir, c.natsURL, c.redisURL, *natsPort, *redisPort)
	if err != nil {
		return err
	}
	defer servers.Stop()
	c.natsURL, c.redisURL = servers.NATSURL, servers.RedisURL
	state.NATSURL, state.RedisURL, state.APIURL = c.natsURL, c.redisURL, af.publicURL
	if err := state.Save(*dataDir); err != nil {
		return err
	}
	log.Info("dev servers", zap.String("nats", redact.URLs(c.natsURL)), zap.String("redis", redact.URLs(c.redisURL)))

	abs, _ := filepath.Abs(*dataDir)
	err = runProcess(ctx, &c, log, kr, role{api: &af, worker: &wf, dispatcher: &df, dev: true},
		func(ctx context.Context, p *app.Process) error {
			if _, err := p.Store.CreateOrg(ctx, devOrgID, "Development", state.WebhookSecret); err != nil {
				return err
			}
			if err := p.Store.UpdateOrg(ctx, devOrgID, linkflow.OrgUpdate{WebhookSecret: state.WebhookSecret, AllowedOrigins: origins}); err != nil {
				return err
			}
			_, _, err := p.Store.CreateAPIKey(ctx, devOrgID, "dev", state.APIKey, nil)
			return err
		}, func() {
			embedded.Banner{API: af.publicURL, Metrics: c.metricsAddr, NATS: redact.URLs(c.natsURL), Redis: redact.URLs(c.redisURL),
				DataDir: abs, Org: devOrgID, State: state, Command: embedded.Command()}.Print(os.Stdout)
		})
	if err != nil {
		return err
	}
	servers.Stop()
	log.Info("stopped; the data stays for the next start", zap.String("data_dir", abs))
	return nil
}

// devKeys are the keys dev runs with: the given ones (the first seals),
// then those dev.json kept that they lack, so that what dev sealed before
// still opens; without given keys, the kept ones.
func devKeys(given, kept string) (string, error) {
	if given == "" {
		return kept, nil
	}
	g, err := store.ParseKeyring(given)
	if err != nil {
		return "", err
	}
	keys := given
	for part := range strings.SplitSeq(kept, ",") {
		k, err := store.ParseKeyring(part)
		if err != nil || strings.TrimSpace(part) == "" {
			continue // not a key: dropped
		}
		if !g.Has(k.PrimaryID()) {
			keys += "," + strings.TrimSpace(part)
		}
	}
	return keys, nil
}

// setDefault changes a registered flag's default, for its help too.
func setDefault(fs *flag.FlagSet, name, v string) {
	f := fs.Lookup(name)
	_ = f.Value.Set(v)
	f.DefValue = v
}

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
