package store

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// WaitRedis waits until Redis answers (on a cluster: every master says
// cluster_state:ok), retrying with capped, jittered backoff and logging
// what it waits for, until ctx ends. What no wait heals (a refused
// password, a TLS mismatch, a cluster node given as a single server) fails
// at once.
// waiting, when not nil, hears why Redis is not ready yet (nil once it is).
// The error of a configuration no wait heals wraps ErrRedisConfig.
func WaitRedis(ctx context.Context, rdb redis.UniversalClient, log *zap.Logger, waiting func(why error)) error {
	if waiting == nil {
		waiting = func(error) {}
	}
	const maxBackoff, logEvery = 5 * time.Second, 5 * time.Second
	backoff := 100 * time.Millisecond
	start := time.Now()
	var logged time.Time
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := redisReady(actx, rdb)
		cancel()
		if err == nil {
			waiting(nil)
			if !logged.IsZero() {
				log.Info("redis answers", zap.Duration("waited", time.Since(start).Round(time.Millisecond)))
			}
			return nil
		}
		if definitiveRedisError(err) {
			return fmt.Errorf("%w: %w", ErrRedisConfig, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("gave up waiting: %v (%w)", cmp.Or(last, err), ctx.Err())
		}
		last = err
		waiting(err)
		if time.Since(logged) >= logEvery {
			logged = time.Now()
			log.Warn("waiting for Redis", zap.String("why", err.Error()),
				zap.Duration("waited", time.Since(start).Round(time.Millisecond)))
		}
		pause := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting: %v (%w)", err, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// ErrRedisConfig marks a Redis configuration no wait heals.
var ErrRedisConfig = errors.New("wrong Redis configuration")

// errClusterNode is a cluster node given as a single server.
var errClusterNode = errors.New("this Redis is a Redis Cluster node: connect to it as a cluster (--redis-cluster, or every node comma-separated)")

// redisReady checks once that Redis serves keys.
func redisReady(ctx context.Context, rdb redis.UniversalClient) error {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return err
		}
		info, err := rdb.Info(ctx, "cluster").Result()
		if err != nil {
			return err
		}
		if strings.Contains(info, "cluster_enabled:1") {
			return errClusterNode
		}
		return nil
	}
	// A node of a cluster that is still forming answers, but says so.
	var masters atomic.Int32
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		masters.Add(1)
		info, err := m.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: %w", m.Options().Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			line, _, _ := strings.Cut(info, "\n")
			return fmt.Errorf("%s: %s", m.Options().Addr, strings.TrimSpace(line))
		}
		return nil
	})
	if err == nil && masters.Load() == 0 {
		err = errors.New("the cluster has no master serving slots yet")
	}
	if err != nil {
		// The client learnt the cluster's shape before it was formed.
		cc.ReloadState(ctx)
	}
	return err
}

// definitiveRedisError reports whether err is a configuration no wait
// heals.
func definitiveRedisError(err error) bool {
	if errors.Is(err, errClusterNode) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "ERR invalid password",
		"ERR Client sent AUTH", "ERR DB index is out of range", "ERR invalid DB index"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &record) || strings.Contains(msg, "remote error: tls:")
}
