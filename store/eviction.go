package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// EvictionWarnings warns of each Redis server (every master of a Redis
// Cluster) that would evict keys when full: one with a maxmemory whose
// maxmemory-policy is not noeviction (Redis's own default; managed services
// often default to volatile-lru). A warning names the server and says what
// to set; none, when every server refuses writes instead of evicting.
//
// linkflow's records refer to one another (a link's completion event takes
// the link's result from the link; a delivery its event), so a Redis that
// evicts drops some of them silently, under a volatile-* policy too: most
// of linkflow's keys have TTLs. The policy is read from INFO (which the
// processes already need), answered where managed services refuse CONFIG.
// A server that could not be asked is in the error, with the warnings of
// those that could.
func (s *Store) EvictionWarnings(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	var out []string
	var errs []error
	check := func(ctx context.Context, c *redis.Client) error {
		addr := c.Options().Addr
		info, err := c.InfoMap(ctx, "memory").Result()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			return nil
		}
		p, max := info["Memory"]["maxmemory_policy"], info["Memory"]["maxmemory"]
		if p != "" && p != "noeviction" && max != "0" { // a server that does not say its maxmemory may have one
			out = append(out, "Redis at "+addr+" evicts keys when full (maxmemory-policy "+p+"); set maxmemory-policy "+
				"noeviction: linkflow's records refer to one another, and an evicted one is lost silently (a full Redis "+
				"under noeviction refuses writes instead, which linkflow answers 503 or retries)")
		}
		return nil
	}
	switch c := s.direct.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, check); err != nil {
			errs = append(errs, err)
		}
	case *redis.Client:
		_ = check(ctx, c)
	default:
		return nil, fmt.Errorf("store: a %T is neither a Redis server's client nor a Redis Cluster's", s.direct)
	}
	slices.Sort(out)
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("read maxmemory-policy: %w", err)
	}
	return out, nil
}
