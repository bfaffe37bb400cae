package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow/api"
)

// startup is what /readyz says while connect waits: for each check, why it
// is not ready yet; once connect is done, the process's own checks.
type startup struct {
	mu     sync.Mutex
	why    map[string]error
	checks []api.ReadyCheck
}

// startupChecks are the checks /readyz names, in its order.
var startupChecks = []string{"redis", "nats", "streams"}

var errNotYet = errors.New("not checked yet")

func newStartup() *startup {
	s := &startup{why: map[string]error{}}
	for _, name := range startupChecks {
		s.why[name] = errNotYet
	}
	return s
}

// waiting records why check is not ready; a nil why: it is.
func (s *startup) waiting(check string, why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.why[check] = why
}

// ready hands /readyz over to the process's own checks.
func (s *startup) ready(checks []api.ReadyCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = checks
}

// readyChecks are /readyz's checks: what connect waits for until it is
// done, then the process's own checks of the same names.
func (s *startup) readyChecks() []api.ReadyCheck {
	out := make([]api.ReadyCheck, len(startupChecks))
	for i, name := range startupChecks {
		out[i] = api.ReadyCheck{Name: name, Check: func(ctx context.Context) error {
			s.mu.Lock()
			checks, why := s.checks, s.why[name]
			s.mu.Unlock()
			for _, c := range checks {
				if c.Name == name {
					return c.Check(ctx)
				}
			}
			if checks != nil || why == nil {
				return nil
			}
			if why == errNotYet {
				return why
			}
			return fmt.Errorf("waiting: %w", why)
		}}
	}
	return out
}

// waitRedis waits until Redis answers (on a cluster: every master says
// cluster_state:ok), retrying with capped, jittered backoff and logging
// what it waits for, until ctx ends. What no wait heals (a refused
// password, a TLS mismatch, a cluster node given as a single server) fails
// at once.
func waitRedis(ctx context.Context, rdb redis.UniversalClient, log *zap.Logger, waiting func(string, error)) error {
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
			waiting("redis", nil)
			if !logged.IsZero() {
				log.Info("redis answers", zap.Duration("waited", time.Since(start).Round(time.Millisecond)))
			}
			return nil
		}
		if definitiveRedisError(err) {
			return fmt.Errorf("%w: fix %s", err, flagRef("redis-url"))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("gave up waiting: %v (%w)", cmp.Or(last, err), ctx.Err())
		}
		last = err
		waiting("redis", err)
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

// errClusterNode is a cluster node given as a single server.
var errClusterNode = errors.New("this Redis is a Redis Cluster node: give --redis-cluster, or every node comma-separated")

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
