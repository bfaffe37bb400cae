package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Redis is the client; any of single node, Sentinel or Cluster. Required.
	Redis redis.UniversalClient
	// Keyring seals secrets. Required.
	Keyring *Keyring
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Retention is how long a finished link is kept. Default 30 days.
	Retention time.Duration
	// EventRetention is how long events stay listable in GET /v1/events.
	// Default 30 days.
	EventRetention time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default 24h.
	IdempotencyTTL time.Duration
	// MinSessionTime is the least time a claimed link has to run: claiming a
	// link that expires sooner extends its expiry to now + MinSessionTime.
	// Default 10 minutes.
	MinSessionTime time.Duration
	// ClaimGuessLimit is how many wrong claim codes a link accepts within
	// ClaimGuessWindow before it refuses every claim. Defaults 10 and 15m.
	ClaimGuessLimit  int
	ClaimGuessWindow time.Duration
	// Prefix starts every key, so that several deployments (or tests) can
	// share one Redis. It may not hold braces. Default "lf:".
	Prefix string
	// NoAutoPipeline sends each call on its own round trip. By default the
	// store batches the commands of concurrent callers into shared round
	// trips (go-redis's AutoPipeliner): a lone call goes at once, and under
	// load many sessions' steps share one write and one read.
	NoAutoPipeline bool
	// FullDuplex runs the auto-pipeliner full duplex on one server (not a
	// Cluster): one connection carries every caller's commands in order,
	// written while earlier replies are still being read, so Redis and
	// the process work at once instead of taking turns (worker only, 3,420
	// -> 3,850 links/s on two cores). Order holds as without it: a commit's
	// script and the connection write behind it run in the order sent.
	// Leave it off where calls must be bounded by a hook's timeout (the
	// API's store): while Redis hangs, a full-duplex call waits for
	// go-redis's own read timeout and retries instead.
	FullDuplex bool
}

// Store is linkflow's Redis state.
type Store struct {
	k   keyspace
	rdb redis.UniversalClient // the auto-pipeliner, or direct
	// direct is the client itself, for what a pipeliner does not do
	// (scanning every master).
	direct redis.UniversalClient
	auto   bool // rdb auto-pipelines (and answers asynchronously)
	// single is a Redis that is not a Cluster: a script there may touch
	// keys of several shards (a commit writes the connection with it).
	single bool
	keys   *Keyring
	now    func() time.Time
	cfg    Config
	// deferApply leaves links' connection writes to the relay, as a process
	// that stops between the two steps does (tests).
	deferApply bool
	// deferAnnounce leaves a repaired connection's connection.healthy event
	// to the relay, as a process that stops after the write does (tests).
	deferAnnounce bool
	// sweepStep, when set, is called as the sweeper's retention round
	// reaches a step ("due": it read the due entries; "held": it found a
	// session holding an overdue link), where a test lets a session act.
	sweepStep func(step string)
	// ready is Ping's latest answer on a Cluster, and when.
	ready struct {
		mu  sync.Mutex
		at  time.Time
		err error
	}
}

// New returns a Store with cfg's defaults filled in.
func New(cfg Config) (*Store, error) {
	if cfg.Redis == nil {
		return nil, errors.New("store: Redis client is required")
	}
	if cfg.Keyring == nil {
		return nil, errors.New("store: Keyring is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Retention = cmp.Or(cfg.Retention, 30*24*time.Hour)
	cfg.EventRetention = cmp.Or(cfg.EventRetention, 30*24*time.Hour)
	cfg.IdempotencyTTL = cmp.Or(cfg.IdempotencyTTL, 24*time.Hour)
	cfg.MinSessionTime = cmp.Or(cfg.MinSessionTime, 10*time.Minute)
	cfg.ClaimGuessLimit = cmp.Or(cfg.ClaimGuessLimit, 10)
	cfg.ClaimGuessWindow = cmp.Or(cfg.ClaimGuessWindow, 15*time.Minute)
	cfg.Prefix = cmp.Or(cfg.Prefix, "lf:")
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, errors.New("store: Prefix may not hold braces")
	}
	s := &Store{k: newKeyspace(cfg.Prefix), rdb: cfg.Redis, direct: cfg.Redis, keys: cfg.Keyring, now: cfg.Now, cfg: cfg}
	_, cluster := cfg.Redis.(*redis.ClusterClient)
	s.single = !cluster
	if !cfg.NoAutoPipeline {
		var ap *redis.AutoPipeliner
		var err error
		if cfg.FullDuplex && s.single {
			ap, err = cfg.Redis.AsyncAutoPipelineWithOptions(&redis.AutoPipelineOptions{FullDuplex: true})
		} else {
			ap, err = cfg.Redis.AsyncAutoPipeline()
		}
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		s.rdb, s.auto = ap, true
	}
	return s, nil
}

// Ping checks that Redis serves keys, within ctx's deadline: a single
// server answers PING; on a Redis Cluster every master says
// cluster_state:ok (a cluster that lost a shard still answers PING, but
// refuses every key with CLUSTERDOWN). It goes on the client itself, not
// through the auto-pipeliner, which does not honour a command's context
// once it is queued.
func (s *Store) Ping(ctx context.Context) error {
	if s.single {
		return s.direct.Ping(ctx).Err()
	}
	// Asking every master reloads the client's view of the cluster: at
	// most once a second, whoever asks (GET /readyz is public), and the
	// callers meanwhile share the answer. Real time, as for a TTL.
	// The look runs on its own deadline, not the caller's: a caller that
	// gives up (a probe's timeout, a dropped connection) must not leave its
	// cancellation as everyone's answer.
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	if !s.ready.at.IsZero() && time.Since(s.ready.at) < time.Second {
		return s.ready.err
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pingTimeout)
	defer cancel()
	err := redisReady(lctx, s.direct)
	s.ready.at, s.ready.err = time.Now(), err
	return err
}

// pingTimeout bounds Ping's look at a Cluster's masters.
const pingTimeout = 2 * time.Second

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// pairsToMap turns a flat [k1 v1 k2 v2 ...] reply into a map.
func pairsToMap(v any) map[string]string {
	arr, _ := v.([]any)
	m := make(map[string]string, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		val, _ := arr[i+1].(string)
		m[k] = val
	}
	return m
}

func validID(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsAny(id, "{}: \x00")
}
