package store_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

func TestRateLimitGCRA(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	take := func(name string, peek bool) linkflow.RateLimitResult {
		t.Helper()
		// A slow rate, so that the buckets' keys, whose TTLs run on real
		// time while the test's clock is fake, outlive the test.
		q := linkflow.RateLimitRequest{Name: name, Rate: 0.01, Burst: 3}
		if peek {
			q.Mode = linkflow.RateLimitPeek
		}
		res, err := b.st.RateLimit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	// A burst of 3 is allowed at once, counting down; the 4th is refused
	// with the time until one request's worth (100 s at 0.01/s) has leaked.
	for i, want := range []int{2, 1, 0} {
		r := take("a", false)
		if !r.Allowed || r.Remaining != want || r.Limit != 3 {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i, r, want)
		}
	}
	r := take("a", false)
	if r.Allowed || r.RetryAfter != 100*time.Second || r.Reset != 300*time.Second {
		t.Fatalf("4th request: %+v, want refused, retry after 100s, reset 300s", r)
	}
	// Peeking never takes.
	if r := take("a", true); r.Allowed {
		t.Fatalf("peek on an empty bucket: %+v", r)
	}
	// Buckets are independent.
	if r := take("b", true); !r.Allowed || r.Remaining != 3 {
		t.Fatalf("peek on a fresh bucket: %+v", r)
	}
	if r := take("b", true); !r.Allowed || r.Remaining != 3 {
		t.Fatalf("second peek on a fresh bucket: %+v", r)
	}
	// Time refills the bucket.
	b.clock.Add(150 * time.Second)
	if r := take("a", false); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("after 150s: %+v, want allowed with 0 remaining", r)
	}
	b.clock.Add(1000 * time.Second)
	if r := take("a", true); !r.Allowed || r.Remaining != 3 {
		t.Fatalf("after 1000s: %+v, want a full bucket", r)
	}

	// Several buckets in one call, in order; braces cannot break the key.
	res, err := b.st.RateLimit(ctx,
		linkflow.RateLimitRequest{Name: "c{x}", Rate: 1, Burst: 1},
		linkflow.RateLimitRequest{Name: "c{x}", Rate: 1, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Allowed || res[1].Allowed || res[1].RetryAfter != time.Second {
		t.Fatalf("two takes of a 1/s bucket: %+v", res)
	}

	// A refund gives back what a reservation took, never more than a full
	// bucket, and is never refused.
	ask := func(q linkflow.RateLimitRequest) linkflow.RateLimitResult {
		t.Helper()
		q.Name, q.Rate, q.Burst = "e", 0.01, 2
		res, err := b.st.RateLimit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	for i, want := range []int{1, 0} {
		if r := ask(linkflow.RateLimitRequest{Mode: linkflow.RateLimitReserve}); !r.Allowed || r.Remaining != want {
			t.Fatalf("reservation %d: %+v, want allowed with %d remaining", i, r, want)
		}
	}
	if r := ask(linkflow.RateLimitRequest{Mode: linkflow.RateLimitReserve}); r.Allowed {
		t.Fatalf("a reservation past the burst: %+v", r)
	}
	if r := ask(linkflow.RateLimitRequest{Mode: linkflow.RateLimitRefund}); !r.Allowed || r.Remaining != 1 {
		t.Fatalf("a refund: %+v, want one back", r)
	}
	if r := ask(linkflow.RateLimitRequest{Mode: linkflow.RateLimitPeek}); !r.Allowed || r.Remaining != 1 {
		t.Fatalf("a peek after the refund: %+v, want 1 remaining", r)
	}
	for range 3 {
		if r := ask(linkflow.RateLimitRequest{Mode: linkflow.RateLimitRefund}); !r.Allowed || r.Remaining != 2 {
			t.Fatalf("a refund into a full bucket: %+v, want it full, no more", r)
		}
	}
	if n, err := b.st.Redis().Exists(ctx, b.st.KeyRateLimit("e")).Result(); err != nil || n != 0 {
		t.Fatalf("a full bucket's key is left: %d %v", n, err)
	}

	// A bucket that errors fails the call, and the others' answers are
	// still given, so that what they reserved can go back.
	if err := b.st.Redis().HSet(ctx, b.st.KeyRateLimit("broken"), "not", "a bucket").Err(); err != nil {
		t.Fatal(err)
	}
	res, err = b.st.RateLimit(ctx, linkflow.RateLimitRequest{Name: "f", Rate: 0.01, Burst: 3, Mode: linkflow.RateLimitReserve},
		linkflow.RateLimitRequest{Name: "broken", Rate: 0.01, Burst: 3, Mode: linkflow.RateLimitReserve})
	if err == nil || len(res) != 2 || !res[0].Allowed || res[0].Remaining != 2 || res[1].Allowed {
		t.Fatalf("a call with a broken bucket: %+v %v, want an error and the other's answer", res, err)
	}

	// A flushed script cache is reloaded.
	if err := b.st.Redis().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if r := take("d", false); !r.Allowed {
		t.Fatalf("after SCRIPT FLUSH: %+v", r)
	}
}

// A peek changes nothing (no bucket made, none changed), and a full Redis
// (maxmemory reached under noeviction) refuses it as it refuses a take: the
// failures a peeked budget guards could not be counted while Redis is full.
func TestPeekRefusedByAFullRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	own, _ := testenv.RedisSingle(t)
	b := setupWith(t, func(c *store.Config) { c.Redis, c.Prefix = own, "" })
	// A slow rate: the taken bucket lives 100 s, longer than the test.
	ask := func(name string, peek bool) error {
		q := linkflow.RateLimitRequest{Name: name, Rate: 0.01, Burst: 3}
		if peek {
			q.Mode = linkflow.RateLimitPeek
		}
		_, err := b.st.RateLimit(ctx, q)
		return err
	}
	if err := ask("taken", false); err != nil {
		t.Fatal(err)
	}
	changes := func() string { // writes since the last save: a peek adds none
		t.Helper()
		info, err := own.InfoMap(ctx, "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		return info["Persistence"]["rdb_changes_since_last_save"]
	}
	before, writes := testenv.RedisContents(ctx, t, own, "*rl:*"), changes()
	taken := own.Keys(ctx, "*rl:{taken}").Val()
	if len(taken) != 1 {
		t.Fatalf("the taken bucket's key: %v", taken)
	}
	ttl := own.PTTL(ctx, taken[0]).Val()
	if err := ask("taken", true); err != nil {
		t.Fatal(err)
	}
	if err := ask("fresh", true); err != nil {
		t.Fatal(err)
	}
	if after := testenv.RedisContents(ctx, t, own, "*rl:*"); !maps.Equal(before, after) || changes() != writes ||
		own.PTTL(ctx, taken[0]).Val() > ttl || ttl <= 0 {
		t.Fatalf("peeks changed Redis (writes %s, then %s; ttl %s):\nbefore %v\nafter  %v", writes, changes(), ttl, before, after)
	}
	setMaxmemory(t, own, "1")
	for _, name := range []string{"taken", "fresh"} {
		for _, peek := range []bool{false, true} {
			if err := ask(name, peek); err == nil || !strings.Contains(err.Error(), "OOM ") {
				t.Errorf("%s (peek %v) on a full Redis: %v, want refused", name, peek, err)
			}
		}
	}
}
