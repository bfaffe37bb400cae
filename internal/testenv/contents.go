package testenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RedisContents is everything rdb holds under keys that match pattern, as
// text: for each key, its name and every member, field, score and value,
// whatever its type; on a Cluster, from every master. A test that asserts
// something is nowhere in Redis reads this, not the names or the hashes
// alone. A key that goes while it is read (another test's) is left out; a
// type it cannot read fails the test.
func RedisContents(ctx context.Context, t testing.TB, rdb redis.UniversalClient, pattern string) map[string]string {
	t.Helper()
	var mu sync.Mutex
	out := map[string]string{}
	read := func(ctx context.Context, node redis.Cmdable) error {
		iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			text, err := readKey(ctx, node, k)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			if text == "" {
				continue // gone meanwhile
			}
			mu.Lock()
			out[k] = text
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if c, ok := rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return read(ctx, m) })
	} else {
		err = read(ctx, rdb)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readKey is k's name and contents as text, "" when k is gone.
func readKey(ctx context.Context, rdb redis.Cmdable, k string) (string, error) {
	typ, err := rdb.Type(ctx, k).Result()
	if err != nil {
		return "", err
	}
	var parts []string
	switch typ {
	case "none":
		return "", nil // gone meanwhile
	case "string":
		v, err := rdb.Get(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		parts = []string{v}
	case "hash":
		m, err := rdb.HGetAll(ctx, k).Result()
		if err != nil {
			return "", err
		}
		for f, v := range m {
			parts = append(parts, f, v)
		}
	case "list":
		if parts, err = rdb.LRange(ctx, k, 0, -1).Result(); err != nil {
			return "", err
		}
	case "set":
		if parts, err = rdb.SMembers(ctx, k).Result(); err != nil {
			return "", err
		}
	case "zset":
		zs, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		if err != nil {
			return "", err
		}
		for _, z := range zs {
			parts = append(parts, fmt.Sprint(z.Member), fmt.Sprint(z.Score))
		}
	case "stream":
		xs, err := rdb.XRange(ctx, k, "-", "+").Result()
		if err != nil {
			return "", err
		}
		for _, x := range xs {
			parts = append(parts, x.ID)
			for f, v := range x.Values {
				parts = append(parts, f, fmt.Sprint(v))
			}
		}
	default:
		return "", fmt.Errorf("a %s, which RedisContents cannot read", typ)
	}
	return k + " " + strings.Join(parts, " "), nil
}
