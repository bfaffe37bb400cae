package app

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// A process that starts on a Redis which evicts keys when full warns of it,
// naming the server and the policy; on one that does not, it says nothing.
func TestStartupWarnsOfAnEvictingRedis(t *testing.T) {
	ctx := context.Background()
	c, s := testenv.RedisSingle(t)
	natsURL, _, _ := testenv.NATS(t)
	kr, err := store.ParseKeyring(store.GenerateKey("t"))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	start := func() {
		t.Helper()
		p, err := Connect(ctx, Config{Logger: zap.New(core), Keyring: kr, RedisURL: s.URL,
			NATS: outbox.ConnectConfig{URL: natsURL}})
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	start()
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 0 {
		t.Fatalf("under noeviction it warned %v", logs.AllUntimed())
	}
	if err := c.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "maxmemory", "1gb").Err(); err != nil {
		t.Fatal(err)
	}
	start()
	warned := logs.FilterLevelExact(zapcore.WarnLevel).AllUntimed()
	if len(warned) != 1 || !strings.Contains(warned[0].Message, s.Addr) ||
		!strings.Contains(warned[0].Message, "maxmemory-policy volatile-lru") ||
		!strings.Contains(warned[0].Message, "set maxmemory-policy noeviction") {
		t.Fatalf("under volatile-lru it logged %v", logs.AllUntimed())
	}
}
