package store_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/store"
)

func TestDialRedisURLs(t *testing.T) {
	t.Parallel()
	c, err := store.DialRedis("rediss://u:secret@cache.internal:6380/2", false)
	if err != nil {
		t.Fatal(err)
	}
	one, ok := c.(*redis.Client)
	if !ok {
		t.Fatalf("a single URL made %T", c)
	}
	o := one.Options()
	if o.Addr != "cache.internal:6380" || o.Username != "u" || o.Password != "secret" || o.DB != 2 || o.TLSConfig == nil || o.PoolSize != 256 {
		t.Fatalf("single: %+v", o)
	}

	for _, url := range []string{
		"rediss://u:secret@n1:7000,n2:7001,redis://n3:7002",
		"rediss://u:secret@n1:7000?addr=n2:7001&addr=n3:7002",
	} {
		c, err := store.DialRedis(url, true)
		if err != nil {
			t.Fatal(url, err)
		}
		cc, ok := c.(*redis.ClusterClient)
		if !ok {
			t.Fatalf("%s made %T", url, c)
		}
		o := cc.Options()
		if len(o.Addrs) != 3 || o.Username != "u" || o.Password != "secret" || o.TLSConfig == nil {
			t.Fatalf("%s: %+v", url, o)
		}
	}
	if c, err := store.DialRedis("n1:7000,n2:7001", false); err != nil {
		t.Fatal(err)
	} else if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("a list of nodes made %T", c)
	}
	if c, err := store.DialRedis("redis://h:6379?pool_size=10", false); err != nil || c.(*redis.Client).Options().PoolSize != 10 {
		t.Fatalf("pool_size: %v", err)
	}
	if _, err := store.DialRedis("redis://h:6379?no_such_option=1", false); err == nil {
		t.Fatal("an unknown option must fail")
	}
	// Go's URL errors quote the URL, password and all: DialRedis's do not.
	for _, tt := range []struct {
		url     string
		cluster bool
	}{
		{"redis://:s3cret@h:bad", false},
		{"redis://u:s3%zzcret@h:6379", false},
		{"redis://u:s3cret", false},
		{"redis://:s3cret@h:bad", true},
		{"redis://n1:7000,redis://:s3cret@h:bad", true},
	} {
		_, err := store.DialRedis(tt.url, tt.cluster)
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "zzcret") {
			t.Errorf("DialRedis(%q, %v): %v", tt.url, tt.cluster, err)
		}
	}
}
