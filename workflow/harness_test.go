package workflow_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/workflow"
)

// harness is a real Redis, a real JetStream, the sandbox and an organization;
// tests start workers on it.
type harness struct {
	t      *testing.T
	log    *zap.Logger
	rdb    redis.UniversalClient
	renv   *testenv.RedisEnv
	prefix string
	st     *store.Store
	kr     *store.Keyring
	keys   string // kr's LINKFLOW_ENCRYPTION_KEYS
	nc     *nats.Conn
	js     jetstream.JetStream
	reg    *operations.Registry
	sb     *sandbox.Sandbox
	pub    *outbox.Publisher
	org    string
}

func newHarness(t *testing.T, sbMod func(*sandbox.Config)) *harness {
	t.Helper()
	h := &harness{t: t, log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
	var renv *testenv.RedisEnv
	h.rdb, renv = testenv.Redis(t)
	h.renv, h.prefix = renv, renv.Prefix
	_, h.nc, h.js = testenv.NATS(t)
	h.keys = store.GenerateKey("t")
	kr, err := store.ParseKeyring(h.keys)
	if err != nil {
		t.Fatal(err)
	}
	h.kr = kr
	if h.st, err = store.New(store.Config{Redis: h.rdb, Keyring: kr, Prefix: h.prefix, FullDuplex: true}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := outbox.EnsureStreams(ctx, h.js, outbox.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{Store: sandbox.NewRedisStore(h.rdb), SlowDelay: 200 * time.Millisecond}
	if sbMod != nil {
		sbMod(&cfg)
	}
	if h.sb, err = sandbox.New(cfg); err != nil {
		t.Fatal(err)
	}
	h.reg = operations.NewRegistry(nil)
	if err := sandbox.Register(h.reg, h.sb); err != nil {
		t.Fatal(err)
	}
	h.pub = testenv.Publisher(t, h.js, h.st, h.log)
	org, err := h.st.CreateOrg(ctx, "", "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	h.org = org.ID
	return h
}

func (h *harness) config(mod func(*workflow.Config)) workflow.Config {
	cfg := workflow.Config{Store: h.st, Registry: h.reg, JetStream: h.js, NATS: h.nc, Publisher: h.pub,
		Logger: h.log, Metrics: workflow.NewMetrics(prometheus.NewRegistry()),
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, ShutdownGrace: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func (h *harness) startWorker(mod func(*workflow.Config)) *workflow.Worker {
	h.t.Helper()
	w, err := workflow.NewWorker(h.config(mod))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(w.Stop)
	return w
}

// run creates a link with ops and claims it as username/password.
func (h *harness) run(integration, username, password string, ops ...linkflow.Operation) *linkflow.Link {
	h.t.Helper()
	ctx := context.Background()
	c, err := h.st.CreateLink(ctx, linkflow.NewLink{OrgID: h.org, IntegrationID: integration, Operations: ops,
		ExpiresIn: time.Hour, WebhookURL: "https://example.com/hook"})
	if err != nil {
		h.t.Fatal(err)
	}
	cl, err := h.st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, username, password)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.pub.Publish(ctx, cl.Message); err != nil {
		h.t.Fatal(err)
	}
	return c.Link
}

// register registers p as integration id, whose one operation is
// {thing, read}.
func (h *harness) register(id string, p operations.Provider) {
	h.t.Helper()
	err := h.reg.Register(operations.Integration{ID: id, DisplayName: id, Provider: p,
		Resources: []operations.Resource{{Name: "thing", Actions: []operations.Action{{Name: "read", ResultKey: "thing"}}}}})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) link(id string) *linkflow.Link {
	h.t.Helper()
	l, err := h.st.Link(context.Background(), h.org, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

// wait waits until the link is in one of statuses and returns it.
func (h *harness) wait(id string, timeout time.Duration, statuses ...linkflow.Status) *linkflow.Link {
	h.t.Helper()
	var l *linkflow.Link
	testenv.Eventually(h.t, timeout, "link "+id+" to reach "+statusList(statuses), func() bool {
		l = h.link(id)
		for _, s := range statuses {
			if l.Status == s {
				return true
			}
		}
		return false
	})
	return l
}

func statusList(ss []linkflow.Status) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

var (
	readPM  = linkflow.Operation{Resource: "paymentMethod", Action: "read"}
	readBil = linkflow.Operation{Resource: "mobileBillingStatement", Action: "read"}
)

func writePM(card string) linkflow.Operation {
	return linkflow.Operation{Resource: "paymentMethod", Action: "write", Arguments: json.RawMessage(
		`{"cardNumber":"` + card + `","expirationDate":"12/30","cvv":"123","nameOnCard":"Jane Doe","billingZip":"10001"}`)}
}

func storeLink(org string, ops ...linkflow.Operation) linkflow.NewLink {
	return linkflow.NewLink{OrgID: org, IntegrationID: "tmobile", Operations: ops, ExpiresIn: time.Hour}
}

// leaseKeys are the keys of link id's lease, found wherever the store put
// them (on every master of a Cluster): none while nobody holds it.
func (h *harness) leaseKeys(id string) []string {
	h.t.Helper()
	var mu sync.Mutex
	var found []string
	scan := func(ctx context.Context, c *redis.Client) error {
		keys, err := c.Keys(ctx, h.prefix+"*link:"+id+":lease").Result()
		mu.Lock()
		defer mu.Unlock()
		found = append(found, keys...)
		return err
	}
	ctx := context.Background()
	var err error
	if cc, ok := h.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, scan)
	} else {
		err = scan(ctx, h.rdb.(*redis.Client))
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return found
}

func (h *harness) leaseHeld(id string) bool { return len(h.leaseKeys(id)) > 0 }

// lapseLease deletes link id's lease, as its expiry in an outage would.
func (h *harness) lapseLease(id string) {
	h.t.Helper()
	keys := h.leaseKeys(id)
	if len(keys) != 1 {
		h.t.Fatalf("lease keys of %s: %v", id, keys)
	}
	if err := h.rdb.Del(context.Background(), keys[0]).Err(); err != nil {
		h.t.Fatal(err)
	}
}

// refusingStore is a store on a client of its own whose commands refuse
// fails while it is on (testenv.Refuse; no auto-pipeliner, whose own
// answers would race with the hook's).
func (h *harness) refusingStore(refuse *testenv.Refuse) *store.Store {
	h.t.Helper()
	rdb, err := store.DialRedis(h.renv.URL, h.renv.Cluster)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = rdb.Close() })
	rdb.AddHook(refuse)
	st, err := store.New(store.Config{Redis: rdb, Keyring: h.kr, Prefix: h.prefix, NoAutoPipeline: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}
