package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// A Redis Cluster that lost the owner of a slot still answers PING on every
// node, but refuses keys with CLUSTERDOWN: the store's Ping (GET /readyz's
// "redis" check) says it is not ready, naming the node, and ready again once
// the slot is served (each within a second: Ping looks at most once a
// second).
func TestPingSaysClusterDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cc, st := clusterStore(t)
	// A caller that gave up (a probe's timeout, a dropped connection) does
	// not leave its cancellation as the next callers' answer.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_ = st.Ping(gone)
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("a healthy cluster, after a caller that gave up: %v", err)
	}
	m, err := cc.MasterForKey(ctx, "{x}")
	if err != nil {
		t.Fatal(err)
	}
	slot := cc.ClusterKeySlot(ctx, "{x}").Val()
	if err := m.ClusterDelSlots(ctx, int(slot)).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the node says CLUSTERDOWN", func() bool {
		err := m.Get(ctx, "{x}").Err()
		return err != nil && strings.HasPrefix(err.Error(), "CLUSTERDOWN")
	})
	if err := m.Ping(ctx).Err(); err != nil {
		t.Fatalf("the node should still answer PING: %v", err)
	}
	// Ping answers from its latest look for up to a second.
	testenv.Eventually(t, 10*time.Second, "Ping to name "+m.Options().Addr, func() bool {
		err := st.Ping(ctx)
		return err != nil && strings.Contains(err.Error(), m.Options().Addr)
	})
	if err := m.ClusterAddSlots(ctx, int(slot)).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "ready again", func() bool { return st.Ping(ctx) == nil })
}

// EvictionWarnings warns of each server that would evict keys when full
// (a maxmemory and a policy other than noeviction, a volatile one too: most
// of linkflow's keys have TTLs), naming it, and of none while every one
// refuses writes when full (noeviction, Redis's default) or has no maxmemory.
func TestEvictionWarnings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kr, err := store.ParseKeyring(store.GenerateKey("t"))
	if err != nil {
		t.Fatal(err)
	}
	c, s := testenv.RedisSingle(t)
	single, err := store.New(store.Config{Redis: c, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	cc, cluster := clusterStore(t)
	warns := func(st *store.Store, want string) {
		t.Helper()
		got, err := st.EvictionWarnings(ctx)
		if err != nil || (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], want) ||
			!strings.Contains(got[0], "set maxmemory-policy noeviction"))) {
			t.Fatalf("warnings %q, %v; want one starting %q", got, err, want)
		}
	}
	warns(single, "")
	warns(cluster, "")
	if err := c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	warns(single, "") // no maxmemory: nothing is evicted
	if err := c.ConfigSet(ctx, "maxmemory", "1gb").Err(); err != nil {
		t.Fatal(err)
	}
	warns(single, "Redis at "+s.Addr+" evicts keys when full (maxmemory-policy allkeys-lru);")
	m, err := cc.MasterForKey(ctx, "{x}")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ConfigSet(ctx, "maxmemory-policy", "volatile-ttl").Err(); err != nil {
		t.Fatal(err)
	}
	if err := m.ConfigSet(ctx, "maxmemory", "1gb").Err(); err != nil {
		t.Fatal(err)
	}
	warns(cluster, "Redis at "+m.Options().Addr+" evicts keys when full (maxmemory-policy volatile-ttl);")
}
