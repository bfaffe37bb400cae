package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// clusterStore is a store on a 3-master Redis Cluster of the test's own
// (its keys sealed with key "t").
func clusterStore(t *testing.T) (*redis.ClusterClient, *store.Store) {
	t.Helper()
	cc, _ := testenv.RedisCluster(t)
	kr, err := store.ParseKeyring(store.GenerateKey("t"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{Redis: cc, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	return cc, st
}

// One organization on a 3-master Redis Cluster: its links, and its webhook
// retries, spread over every master. (Before the sharded layout, all of
// them sat on one.)
func TestOneOrganizationSpreadsOverTheCluster(t *testing.T) {
	t.Parallel()
	cc, st := clusterStore(t)
	ctx := context.Background()
	org, err := st.CreateOrg(ctx, "", "one", "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	perMaster := map[string]int{}
	scheduleSlots := map[int64]bool{}
	now := time.Now()
	for i := range n {
		c, err := st.CreateLink(ctx, linkflow.NewLink{OrgID: org.ID, IntegrationID: "tmobile", ExpiresIn: time.Hour,
			WebhookURL: "https://hooks.example.com/x", Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := cc.MasterForKey(ctx, st.KeyLink(c.Link.ID))
		if err != nil {
			t.Fatal(err)
		}
		perMaster[m.Options().Addr]++
		if i%10 != 0 {
			continue
		}
		// Every tenth link ends and its webhook waits in the retry schedule.
		fin, err := st.FailLink(ctx, org.ID, c.Link.ID, linkflow.LinkError{Code: linkflow.FailureDeclined, Message: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AcceptEvent(ctx, linkflow.EventAccept{OrgID: org.ID, EventID: fin.EventID, Now: now,
			FirstAt: now, ClaimUntil: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		slot, err := cc.ClusterKeySlot(ctx, st.KeyRetrySchedule(fin.EventID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if at, err := st.ScheduledAt(ctx, linkflow.DeliveryRef{OrgID: org.ID, EventID: fin.EventID}); err != nil || at.IsZero() {
			t.Fatalf("delivery of %s not in the retry schedule: %v", fin.EventID, err)
		}
		scheduleSlots[slot] = true
	}
	var masters atomic.Int32 // ForEachMaster calls fn on every master at once
	if err := cc.ForEachMaster(ctx, func(context.Context, *redis.Client) error { masters.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	if masters.Load() != 3 || len(perMaster) != 3 {
		t.Fatalf("links on %d of %d masters: %v", len(perMaster), masters.Load(), perMaster)
	}
	for addr, c := range perMaster {
		if c < n/5 {
			t.Errorf("master %s holds %d of %d links, under 20%%", addr, c, n)
		}
	}
	if len(scheduleSlots) < 3 {
		t.Errorf("the retry schedule spans %d slots, want at least 3", len(scheduleSlots))
	}
	t.Logf("links per master %v; retry schedule over %d slots", perMaster, len(scheduleSlots))
	// Listing merges the shards: the organization's 600 links, newest first.
	seen, cursor := 0, ""
	var last string
	for {
		links, next, err := st.ListLinks(ctx, org.ID, linkflow.LinkFilter{}, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if last != "" && l.ID >= last {
				t.Fatalf("list not newest first: %s after %s", l.ID, last)
			}
			last = l.ID
			seen++
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if seen != n {
		t.Fatalf("listed %d links, want %d", seen, n)
	}
}

// rotate-data scans a Cluster's masters side by side and counts every
// sealed value of all of them (its counts decide which keys may retire).
func TestRotateDataCountsEveryMaster(t *testing.T) {
	t.Parallel()
	_, st := clusterStore(t)
	ctx := context.Background()
	const n = 150 // organizations, each with a sealed webhook secret, over the 3 masters
	for range n {
		if _, err := st.CreateOrg(ctx, "", "acme", ""); err != nil {
			t.Fatal(err)
		}
	}
	sealed, err := st.RotateData(ctx, false)
	if err != nil || !sealed.Complete || sealed.ByKey["t"] != n {
		t.Fatalf("rotate-data: %+v %v, want %d values sealed with t", sealed, err, n)
	}
}
