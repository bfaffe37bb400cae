package store_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// A rotation keeps the replaced secret signing for its overlap; one
// without an overlap ends it; an unknown organization is not found.
func TestRotateWebhookSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	o, err := b.st.Org(ctx, b.org)
	if err != nil {
		t.Fatal(err)
	}
	first, second, third := o.WebhookSecrets[0], store.NewWebhookSecret(), store.NewWebhookSecret()
	if err := b.st.UpdateOrg(ctx, b.org, linkflow.OrgUpdate{WebhookSecret: second, PreviousSecretFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if o, err = b.st.Org(ctx, b.org); err != nil || len(o.WebhookSecrets) != 2 || o.WebhookSecrets[0] != second ||
		o.WebhookSecrets[1] != first || !o.PreviousSecretUntil.Equal(b.clock.Now().Add(time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("after a rotation with an overlap: %+v (%v)", o, err)
	}
	b.clock.Add(time.Hour)
	if o, _ = b.st.Org(ctx, b.org); len(o.WebhookSecrets) != 1 {
		t.Fatalf("past the overlap: %d secrets", len(o.WebhookSecrets))
	}
	b.clock.Add(-time.Hour)
	schemes := []string{"acme"}
	if err := b.st.UpdateOrg(ctx, b.org, linkflow.OrgUpdate{WebhookSecret: third, AppSchemes: &schemes}); err != nil {
		t.Fatal(err)
	}
	if o, _ = b.st.Org(ctx, b.org); len(o.WebhookSecrets) != 1 || o.WebhookSecrets[0] != third || len(o.AppSchemes) != 1 {
		t.Fatalf("after a rotation without an overlap: %+v", o)
	}
	if err := b.st.UpdateOrg(ctx, "org_unknown", linkflow.OrgUpdate{WebhookSecret: store.NewWebhookSecret()}); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("an unknown organization: %v", err)
	}
}

// Two rotations at once each keep the secret before them: one ends as the
// current secret and the other as the previous, so no secret an operator
// was shown is lost.
func TestRotationsAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	for round := range 20 {
		secrets := [2]string{store.NewWebhookSecret(), store.NewWebhookSecret()}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				<-start
				errs[i] = b.st.UpdateOrg(ctx, b.org, linkflow.OrgUpdate{WebhookSecret: secrets[i], PreviousSecretFor: time.Hour})
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		o, err := b.st.Org(ctx, b.org)
		if err != nil {
			t.Fatal(err)
		}
		if len(o.WebhookSecrets) != 2 || !(o.WebhookSecrets[0] == secrets[0] && o.WebhookSecrets[1] == secrets[1] ||
			o.WebhookSecrets[0] == secrets[1] && o.WebhookSecrets[1] == secrets[0]) {
			t.Fatalf("round %d: two rotations at once left %d secrets, not the two given", round, len(o.WebhookSecrets))
		}
	}
}

// Revoking an API key on a Redis Cluster whose node holding the key's
// record does not answer (a failover, say) fails, and leaves the key
// revocable by its id: its index entry, on another node, goes only after
// the record. The revoke tried again once the node answers takes the key.
func TestRevokeAPIKeyAfterAHalfDoneTry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc, err := embedded.StartRedisCluster(embedded.RedisClusterOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Kill)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs, ReadTimeout: 300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = cc.Close() })
	kr, err := store.ParseKeyring(store.GenerateKey("t"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{Redis: cc, Keyring: kr, NoAutoPipeline: true})
	if err != nil {
		t.Fatal(err)
	}
	org, err := st.CreateOrg(ctx, "", "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	node := func(key string) *embedded.Redis {
		t.Helper()
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.Index(rc.Addrs, m.Options().Addr)
		if i < 0 {
			t.Fatalf("no node at %s", m.Options().Addr)
		}
		return rc.Nodes[i]
	}
	var secret, id string
	for secret == "" || node(st.KeyAPIKey(secret)) == node(st.KeyOrgAPIKeys(org.ID)) {
		s, rec, err := st.CreateAPIKey(ctx, org.ID, "k", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		secret, id = s, rec.ID
	}
	held := node(st.KeyAPIKey(secret))
	if err := syscall.Kill(held.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(held.Pid(), syscall.SIGCONT) }) // never left stopped
	err = st.RevokeAPIKey(ctx, org.ID, id)
	if err := syscall.Kill(held.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("a revoke whose record's node did not answer succeeded")
	}
	testenv.Eventually(t, 10*time.Second, "the revoke tried again to take the key", func() bool {
		return st.RevokeAPIKey(ctx, org.ID, id) == nil
	})
	if _, _, err := st.Authenticate(ctx, secret, nil); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("the revoked key authenticates: %v", err)
	}
}
