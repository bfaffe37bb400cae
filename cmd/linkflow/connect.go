package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/linkflow/linkflow/internal/app"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

func newLogger(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	cfg := zap.NewProductionConfig()
	switch format {
	case "json":
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("--log-format (LINKFLOW_LOG_FORMAT) %q: want json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	return cfg.Build(zap.WrapCore(sampleWarnings))
}

// sampleWarnings samples warnings and errors, not the rest: of the lines of
// one level and message, each second, the first 20 are written and then one
// in 100. A Redis or NATS outage makes every request, message and retry warn
// with the same words, and the log pipeline would saturate just when it is
// needed; info lines (a link finished, a worker started) are one per thing
// and all kept.
func sampleWarnings(c zapcore.Core) zapcore.Core {
	return zapcore.NewTee(
		levels{c, func(l zapcore.Level) bool { return l < zapcore.WarnLevel }},
		zapcore.NewSamplerWithOptions(levels{c, func(l zapcore.Level) bool { return l >= zapcore.WarnLevel }},
			time.Second, 20, 100),
	)
}

// levels is a core that takes only the levels in takes.
type levels struct {
	zapcore.Core
	takes func(zapcore.Level) bool
}

func (l levels) Enabled(lvl zapcore.Level) bool { return l.takes(lvl) && l.Core.Enabled(lvl) }

func (l levels) With(fields []zapcore.Field) zapcore.Core {
	return levels{l.Core.With(fields), l.takes}
}

func (l levels) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if !l.takes(e.Level) {
		return ce
	}
	return l.Core.Check(e, ce)
}

// appConfig is the process configuration of the common flags. keyring may
// be nil (then --encryption-keys is required).
func (c *common) appConfig(log *zap.Logger, kr *store.Keyring) (app.Config, error) {
	if kr == nil {
		if c.encryptionKeys == "" {
			return app.Config{}, errors.New("--encryption-keys (LINKFLOW_ENCRYPTION_KEYS) is required: generate one with `linkflow keys generate`")
		}
		var err error
		if kr, err = store.ParseKeyring(c.encryptionKeys); err != nil {
			return app.Config{}, err
		}
	}
	cfg := app.Config{
		Logger: log, Keyring: kr, RedisURL: c.redisURL, RedisCluster: c.redisCluster, RedisPrefix: c.redisPrefix,
		NATS: outbox.ConnectConfig{URL: c.natsURL, CredsFile: c.natsCreds, CAFile: c.natsCA, CertFile: c.natsCert,
			KeyFile: c.natsKey, Streams: outbox.StreamConfig{Replicas: c.streamReplicas}},
		StartupTimeout: c.startupTimeout, MetricsAddr: c.metricsAddr,
		RemoteProviders: splitList(c.remote), RemoteToken: c.remoteToken,
		Flag: func(setting string) string { return flagRef(settingFlags[setting]) },
	}
	if c.sandbox {
		cfg.Sandbox = &sandbox.Config{Latency: c.sandboxLatency, SlowDelay: time.Duration(c.sandboxSlowMS) * time.Millisecond}
		if c.sandboxMemory {
			cfg.Sandbox.Store = sandbox.NewMemoryStore()
		}
	}
	return cfg, nil
}

// settingFlags are the flags of app.Config's settings.
var settingFlags = map[string]string{
	"RedisURL": "redis-url", "MetricsAddr": "metrics-addr", "StartupTimeout": "startup-timeout",
	"NATS.URL": "nats-url", "NATS.CredsFile": "nats-creds", "NATS.CAFile": "nats-ca", "NATS.CertFile": "nats-cert",
	"NATS.KeyFile": "nats-key", "NATS.Streams.Replicas": "stream-replicas",
	"Worker.Integrations": "integrations", "Worker.IntegrationLimits": "integration-limits",
}

// flagRef names a flag and its environment variable.
func flagRef(name string) string {
	if name == "" {
		return "the NATS flags"
	}
	return "--" + name + " (" + envName(name) + ")"
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// redisLogger carries go-redis's own log lines (a pool that cannot dial, a
// connection it drops) into a process's logger: printed to stderr as they
// come, they would break a JSON log's lines, and print noise before a
// command's own clear error. The message is constant, so a flood is sampled.
type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("go-redis", zap.String("detail", fmt.Sprintf(format, v...)))
}
