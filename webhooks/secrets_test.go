package webhooks

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
)

// fakeOrgs serves organizations' secrets and counts reads; a read blocks
// while gate is set.
type fakeOrgs struct {
	mu    sync.Mutex
	orgs  map[string]*linkflow.Org
	err   error
	reads atomic.Int32
	gate  chan struct{}
}

func (f *fakeOrgs) load(ctx context.Context, id string) (*linkflow.Org, error) {
	f.reads.Add(1)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	o, ok := f.orgs[id]
	if !ok {
		return nil, linkflow.ErrNotFound
	}
	cp := *o
	return &cp, nil
}

func (f *fakeOrgs) set(id string, o *linkflow.Org) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orgs[id] = o
}

func TestSecretCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	orgs := &fakeOrgs{orgs: map[string]*linkflow.Org{"org_a": {ID: "org_a", WebhookSecrets: []string{"whsec_a1"}}}}
	c := newSecretCache(5*time.Second, clock, orgs.load)
	ctx := context.Background()
	get := func(org string) []string {
		t.Helper()
		s, err := c.secrets(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	if s := get("org_a"); !slices.Equal(s, []string{"whsec_a1"}) || orgs.reads.Load() != 1 {
		t.Fatalf("first: %v, %d reads", s, orgs.reads.Load())
	}
	// A rotation is not seen until the entry expires...
	orgs.set("org_a", &linkflow.Org{ID: "org_a", WebhookSecrets: []string{"whsec_a2", "whsec_a1"},
		PreviousSecretUntil: now.Add(time.Minute)})
	advance(4 * time.Second)
	if s := get("org_a"); !slices.Equal(s, []string{"whsec_a1"}) || orgs.reads.Load() != 1 {
		t.Fatalf("within the TTL: %v, %d reads", s, orgs.reads.Load())
	}
	// ...and then it is.
	advance(time.Second)
	if s := get("org_a"); !slices.Equal(s, []string{"whsec_a2", "whsec_a1"}) || orgs.reads.Load() != 2 {
		t.Fatalf("after the TTL: %v, %d reads", s, orgs.reads.Load())
	}
	// The previous secret stops signing at its own time, cached or not.
	orgs.set("org_a", &linkflow.Org{ID: "org_a", WebhookSecrets: []string{"whsec_a2", "whsec_a1"},
		PreviousSecretUntil: now.Add(6 * time.Second)})
	advance(5 * time.Second)
	if s := get("org_a"); !slices.Equal(s, []string{"whsec_a2", "whsec_a1"}) || orgs.reads.Load() != 3 {
		t.Fatalf("during the overlap: %v, %d reads", s, orgs.reads.Load())
	}
	advance(time.Second)
	if s := get("org_a"); !slices.Equal(s, []string{"whsec_a2"}) || orgs.reads.Load() != 3 {
		t.Fatalf("after the overlap: %v, %d reads", s, orgs.reads.Load())
	}

	// Errors are not cached.
	if _, err := c.secrets(ctx, "org_none"); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("unknown organization: %v", err)
	}
	orgs.set("org_none", &linkflow.Org{ID: "org_none", WebhookSecrets: []string{"whsec_n"}})
	if s := get("org_none"); !slices.Equal(s, []string{"whsec_n"}) {
		t.Fatalf("after it was created: %v", s)
	}

	// A negative TTL reads every time.
	off := newSecretCache(-1, clock, orgs.load)
	before := orgs.reads.Load()
	for range 3 {
		if _, err := off.secrets(ctx, "org_a"); err != nil {
			t.Fatal(err)
		}
	}
	if n := orgs.reads.Load() - before; n != 3 {
		t.Errorf("without a cache: %d reads, want 3", n)
	}
}

// Concurrent misses for one organization share one read.
func TestSecretCacheSharesReads(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	orgs := &fakeOrgs{orgs: map[string]*linkflow.Org{"org_a": {ID: "org_a", WebhookSecrets: []string{"whsec_a1"}}}, gate: gate}
	c := newSecretCache(5*time.Second, time.Now, orgs.load)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			s, err := c.secrets(context.Background(), "org_a")
			if err == nil && !slices.Equal(s, []string{"whsec_a1"}) {
				err = errors.New("wrong secrets")
			}
			errs <- err
		})
	}
	testenv.Eventually(t, 5*time.Second, "a read in flight", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		e := c.orgs["org_a"]
		return e != nil && e.loading != nil && orgs.reads.Load() == 1
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := orgs.reads.Load(); n != 1 {
		t.Errorf("%d reads, want 1", n)
	}
}
