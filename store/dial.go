package store

import (
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/redact"
)

// DialRedis returns a client of the Redis that url names (it does not
// connect yet):
//
//   - redis://[user:password@]host:port[/db][?options] is one server;
//     rediss:// the same over TLS. Options are go-redis's (dial_timeout=3s,
//     pool_size=100, ...).
//   - with cluster set, url is a Redis Cluster, reached through the seed
//     node it names; more seed nodes follow in addr= options
//     (redis://user:password@node1:6379?addr=node2:6379), or comma-separated
//     (node1:6379,node2:6379, the scheme and credentials of the first apply
//     to all). A URL with a comma is always a cluster.
//
// A host:port without a scheme is read as redis://host:port. The pool holds
// at least 256 connections unless the URL asks for another size. A call's
// context bounds its reads and writes (go-redis's ContextTimeoutEnabled):
// without it, a Redis that hangs holds a call for go-redis's own timeouts
// whatever deadline its caller set. A failed dial is not retried within a
// call (go-redis's DialerRetries, 5 tries 100 ms apart by default): the
// call's own retries try again, and a Redis that refuses connections is
// then known in tens of milliseconds, not seconds, so the API answers 503
// at once and the worker's and dispatcher's own backoffs take over.
func DialRedis(url string, cluster bool) (redis.UniversalClient, error) {
	seeds := strings.Split(url, ",")
	for i, s := range seeds {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "redis://" + s
		}
		seeds[i] = s
	}
	if !cluster && len(seeds) == 1 {
		opt, err := redis.ParseURL(seeds[0])
		if err != nil {
			return nil, fmt.Errorf("redis url %s: %w", redact.URLs(seeds[0]), redact.ParseError(err))
		}
		if !strings.Contains(url, "pool_size=") {
			opt.PoolSize = max(opt.PoolSize, 256)
		}
		opt.ContextTimeoutEnabled = true
		opt.DialerRetries = 1
		return redis.NewClient(opt), nil
	}
	opt, err := redis.ParseClusterURL(seeds[0])
	if err != nil {
		return nil, fmt.Errorf("redis cluster url %s: %w", redact.URLs(seeds[0]), redact.ParseError(err))
	}
	for _, s := range seeds[1:] {
		more, err := redis.ParseClusterURL(s)
		if err != nil {
			return nil, fmt.Errorf("redis cluster url %s: %w", redact.URLs(s), redact.ParseError(err))
		}
		opt.Addrs = append(opt.Addrs, more.Addrs...)
	}
	if !strings.Contains(url, "pool_size=") {
		opt.PoolSize = max(opt.PoolSize, 256)
	}
	opt.ContextTimeoutEnabled = true
	opt.DialerRetries = 1
	return redis.NewClusterClient(opt), nil
}
