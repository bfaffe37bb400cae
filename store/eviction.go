package store

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// EvictingServers names each Redis server (every master of a Redis
// Cluster) whose maxmemory-policy evicts keys when it is full, as
// "host:port evicts keys (maxmemory-policy allkeys-lru)"; none, when every
// one refuses writes instead (noeviction, Redis's default).
//
// linkflow's records refer to one another (a link's completion event takes
// the link's result from the link; a delivery its event), so a Redis that
// evicts drops some of them silently, a volatile-* policy included: most
// of linkflow's keys have TTLs. The policy is read from INFO, which managed
// Redis services answer where they refuse CONFIG.
func (s *Store) EvictingServers(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	var out []string
	check := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return fmt.Errorf("%s: %w", c.Options().Addr, err)
		}
		if p := infoField(info, "maxmemory_policy"); p != "" && p != "noeviction" {
			mu.Lock()
			out = append(out, fmt.Sprintf("%s evicts keys (maxmemory-policy %s)", c.Options().Addr, p))
			mu.Unlock()
		}
		return nil
	}
	var err error
	switch c := s.direct.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, check)
	case *redis.Client:
		err = check(ctx, c)
	default:
		return nil, fmt.Errorf("store: a %T is neither a Redis server's client nor a Redis Cluster's", s.direct)
	}
	if err != nil {
		return nil, fmt.Errorf("read Redis's maxmemory-policy: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// EvictionAdvice is what an operator told of an evicting Redis should do.
const EvictionAdvice = "set maxmemory-policy noeviction: a Redis that evicts drops linkflow's records silently when full " +
	"(with noeviction it refuses writes instead, and linkflow retries them)"

// infoField is one field of an INFO reply ("name:value" lines), or "".
func infoField(info, name string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), name+":"); ok {
			return v
		}
	}
	return ""
}
