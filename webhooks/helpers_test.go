package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
)

// testBundle is one test's linkflow: real Redis, real JetStream, an
// organization, the publisher that puts completion events on JetStream.
type testBundle struct {
	t       testing.TB
	ctx     context.Context
	rdb     redis.UniversalClient
	prefix  string // the stores' key prefix
	store   *store.Store
	nc      *nats.Conn
	js      jetstream.JetStream
	pub     *outbox.Publisher
	log     *zap.Logger
	metrics *prometheus.Registry
	svc     *webhooks.Service
	org     string
	secret  string
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	ctx := context.Background()
	rdb, renv := testenv.Redis(t)
	_, nc, js := testenv.NATS(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	kr, err := store.ParseKeyring(store.GenerateKey("test1"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr, Prefix: renv.Prefix, FullDuplex: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	org, err := st.CreateOrg(ctx, "", "Webhook tests", "")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := outbox.NewPublisher(outbox.PublisherConfig{JetStream: js, Store: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	return &testBundle{t: t, ctx: ctx, rdb: rdb, prefix: renv.Prefix, store: st, nc: nc, js: js, pub: pub, log: log,
		metrics: prometheus.NewRegistry(), org: org.ID, secret: org.WebhookSecrets[0],
		svc: webhooks.NewService(webhooks.ServiceConfig{Store: st, Feed: outbox.NewFeed(js), Logger: log, Notifier: outbox.NewNotifier(nc, log)})}
}

// config is a dispatcher configuration with a compressed schedule.
func (b *testBundle) config() webhooks.Config {
	return webhooks.Config{
		Store: b.store, JetStream: b.js, Logger: b.log, Metrics: b.metrics, AllowPrivate: true,
		Schedule:        []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond},
		Timeout:         5 * time.Second,
		Visibility:      10 * time.Second,
		BreakerCooldown: 100 * time.Millisecond,
		HostRetryDelay:  20 * time.Millisecond,
		PollInterval:    100 * time.Millisecond,
		ShutdownGrace:   2 * time.Second,
	}
}

// dispatcher starts a dispatcher, stopped when the test ends.
func (b *testBundle) dispatcher(cfg webhooks.Config) *webhooks.Dispatcher {
	b.t.Helper()
	d, err := webhooks.NewDispatcher(cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := d.Start(b.ctx); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(d.Stop)
	return d
}

// finish ends a new link whose webhook goes to url (canceling it) and
// publishes its completion event, as the API does.
func (b *testBundle) finish(url string) (linkID, eventID string) {
	b.t.Helper()
	return b.finishFor(b.org, url)
}

// finishFor is finish for organization org's link.
func (b *testBundle) finishFor(org, url string) (linkID, eventID string) {
	b.t.Helper()
	c, err := b.store.CreateLink(b.ctx, linkflow.NewLink{OrgID: org, IntegrationID: "sandbox",
		WebhookURL: url, ExpiresIn: time.Hour})
	if err != nil {
		b.t.Fatal(err)
	}
	res, err := b.store.CancelLink(b.ctx, org, c.Link.ID)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.pub.Publish(b.ctx, res.Finished.Event); err != nil {
		b.t.Fatal(err)
	}
	return c.Link.ID, res.Finished.EventID
}

// finishN finishes n links whose webhooks go to url; it returns their
// events' ids.
func (b *testBundle) finishN(url string, n int) []string {
	b.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		_, ids[i] = b.finish(url)
	}
	return ids
}

func (b *testBundle) delivery(eventID string) *linkflow.Delivery {
	b.t.Helper()
	d, _, err := b.store.LoadDelivery(b.ctx, b.org, eventID)
	if errors.Is(err, linkflow.ErrNotFound) {
		return nil
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

func (b *testBundle) waitStatus(eventID, status string, timeout time.Duration) *linkflow.Delivery {
	b.t.Helper()
	var d *linkflow.Delivery
	testenv.Eventually(b.t, timeout, "delivery "+eventID+" "+status, func() bool {
		d = b.delivery(eventID)
		return d != nil && d.Status == status
	})
	return d
}

func (b *testBundle) attempts(linkID string) []webhooks.Attempt {
	b.t.Helper()
	ld, err := b.svc.Deliveries(b.ctx, b.org, linkID)
	if err != nil {
		b.t.Fatal(err)
	}
	return ld.Data
}

// scheduled reports whether a delivery is in the retry schedule.
func (b *testBundle) scheduled(eventID string) bool {
	_, ok := b.scheduledAt(eventID)
	return ok
}

// scheduledAt returns when the retry schedule has a delivery due, from the
// store's backlog sample (the test's deliveries are few).
func (b *testBundle) scheduledAt(eventID string) (time.Time, bool) {
	b.t.Helper()
	bl, err := b.store.Backlog(b.ctx, 1000)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, d := range bl.Retrying {
		if d.OrgID == b.org && d.EventID == eventID {
			return d.NextAt, true
		}
	}
	return time.Time{}, false
}

func (b *testBundle) storedEvent(linkID string) *linkflow.StoredEvent {
	b.t.Helper()
	id := linkflow.LinkEventID(linkID)
	evs, err := b.store.EventRecords(b.ctx, []string{id})
	if err != nil {
		b.t.Fatal(err)
	}
	ev, ok := evs[id]
	if !ok {
		b.t.Fatalf("no event for link %s", linkID)
	}
	return &ev
}

// received is one request a receiver got.
type received struct {
	id, timestamp, signature, userAgent string
	header                              http.Header
	body                                []byte
	at                                  time.Time
	status                              int
}

// receiver is a webhook endpoint for tests. respond decides the answer to
// the n-th request (1-based) carrying a webhook-id.
type receiver struct {
	srv     *httptest.Server
	respond func(w http.ResponseWriter, r *http.Request, n int) int

	mu   sync.Mutex
	reqs []received
	byID map[string]int
}

func newReceiver(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, n int) int) *receiver {
	t.Helper()
	rc := &receiver{respond: respond, byID: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

// answer is a respond func that always answers status.
func answer(status int) func(http.ResponseWriter, *http.Request, int) int {
	return func(w http.ResponseWriter, _ *http.Request, _ int) int { w.WriteHeader(status); return status }
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(webhooks.HeaderID)
	rc.mu.Lock()
	rc.byID[id]++
	n := rc.byID[id]
	rc.mu.Unlock()
	status := rc.respond(w, r, n)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, received{id: id, timestamp: r.Header.Get(webhooks.HeaderTimestamp),
		signature: r.Header.Get(webhooks.HeaderSignature), userAgent: r.UserAgent(), header: r.Header.Clone(),
		body: body, at: time.Now(), status: status})
	rc.mu.Unlock()
}

func (rc *receiver) url() string { return rc.srv.URL + "/hook" }

// count is how many requests carried webhook-id id (answered or not).
func (rc *receiver) count(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.byID[id]
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// fakeResolver resolves names from a map, like a DNS server that answers
// what the test wants (127.0.0.1 for a public-looking name).
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := f[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lastEventSeq is the sequence of the newest message on the events stream.
func (b *testBundle) lastEventSeq() uint64 {
	b.t.Helper()
	stream, err := b.js.Stream(b.ctx, outbox.StreamEvents)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := stream.Info(b.ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	return info.State.LastSeq
}

// waitAcked waits until the dispatchers' consumer acked every event message
// up to seq (the stream keeps them for the event feed).
func (b *testBundle) waitAcked(seq uint64) {
	b.t.Helper()
	testenv.Eventually(b.t, 10*time.Second, "the event messages acked", func() bool {
		c, err := b.js.Consumer(b.ctx, outbox.StreamEvents, outbox.DispatcherConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(b.ctx)
		return err == nil && info.AckFloor.Stream >= seq
	})
}
