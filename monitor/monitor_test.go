package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/monitor"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
	"github.com/linkflow/linkflow/webhooks"
)

// bundle is a running linkflow whose webhooks all fail (500), retried only
// an hour later, with links that succeeded, failed, were canceled and wait.
type bundle struct {
	s       *teststack.Stack
	m       *monitor.Monitor
	webhook string // the failing receiver's host
}

func setup(t *testing.T) *bundle {
	t.Helper()
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(recv.Close)
	s := teststack.NewStack(t, teststack.StackOptions{Dispatcher: func(c *webhooks.Config) {
		c.Schedule = []time.Duration{0, time.Hour}
	}})
	m, err := monitor.New(monitor.Config{Store: s.Store, JetStream: s.JS, CacheFor: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{s: s, m: m, webhook: strings.TrimPrefix(recv.URL, "http://")}
	hook := recv.URL + "/hook"
	ok, bad := b.link(t, hook), b.link(t, hook)
	canceled := b.link(t, hook)
	b.link(t, hook) // waits for its end user
	b.claim(t, ok, "user_good")
	b.claim(t, bad, "user_locked") // fails at login: ACCOUNT_LOCKED
	if r := s.Do(t, http.MethodPost, "/v1/links/"+canceled[0]+"/cancel", s.APIKey, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.StatusCode, r.Body)
	}
	b.wait(t, ok[0], "succeeded")
	b.wait(t, bad[0], "failed")
	testenv.Eventually(t, 10*time.Second, "three webhooks to fail once", func() bool { return hits.Load() >= 3 })
	return b
}

// link creates a tmobile link and returns its id and claim code.
func (b *bundle) link(t *testing.T, hook string) [2]string {
	t.Helper()
	r := b.s.Do(t, http.MethodPost, "/v1/links", b.s.APIKey, map[string]any{"integrationId": "tmobile",
		"operations": []any{map[string]any{"resource": "paymentMethod", "action": "read"}}, "webhookUrl": hook})
	var l struct{ LinkID, ClaimCode string }
	r.JSON(t, &l)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	return [2]string{l.LinkID, l.ClaimCode}
}

func (b *bundle) claim(t *testing.T, l [2]string, username string) {
	t.Helper()
	r := b.s.Do(t, http.MethodPost, "/v1/links/"+l[0]+"/claim", "",
		map[string]any{"claimCode": l[1], "credentials": map[string]string{"username": username, "password": "pass_good"}})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("claim: %d %s", r.StatusCode, r.Body)
	}
}

func (b *bundle) wait(t *testing.T, id, status string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, "link "+id+" to be "+status, func() bool {
		var l struct{ Status string }
		b.s.Do(t, http.MethodGet, "/v1/links/"+id, b.s.APIKey, nil).JSON(t, &l)
		return l.Status == status
	})
}

func TestStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var st *monitor.Status
	testenv.Eventually(t, 10*time.Second, "the status to show every outcome and the failing host", func() bool {
		var err error
		if st, err = b.m.Status(ctx); err != nil {
			t.Fatal(err)
		}
		hosts := st.FailingHosts
		return len(st.Finished) == 2 && st.Finished[0].Counts["canceled"] == 1 && st.Finished[0].Counts["failed"] == 1 &&
			st.Finished[0].Counts["succeeded"] == 1 && hosts != nil && len(hosts.Hosts) == 1 && hosts.Hosts[0].Deliveries == 3 &&
			st.Outbox != nil && st.Outbox.Entries == 0
	})
	if len(st.Errors) > 0 || len(st.Warnings) > 0 {
		t.Fatalf("errors: %v, warnings: %v", st.Errors, st.Warnings)
	}
	if f := st.Finished[1]; f.Seconds != 24*3600 || f.Counts["succeeded"] != 1 || f.Counts["expired"] != 0 {
		t.Fatalf("last 24h: %+v", f)
	}
	if f := st.Failures; f == nil || f.Total != 1 || f.Read != 1 || len(f.Codes) != 1 ||
		f.Codes[0] != (monitor.CodeCount{Code: string(linkflow.FailureAccountLocked), Count: 1}) {
		t.Fatalf("failures %+v", st.Failures)
	}
	h := st.FailingHosts.Hosts[0]
	if h.Host != b.webhook || h.LastStatusCode != 500 || h.LastAttemptAt.IsZero() || h.Since.IsZero() {
		t.Fatalf("failing host %+v, want %s answering 500", h, b.webhook)
	}
	if l := st.Links; l == nil || l.Pending != 1 || l.Queued != 0 || l.InFlight != 0 || l.Kept != 4 {
		t.Fatalf("links %+v", st.Links)
	}
	if r := st.Retries; r == nil || r.Scheduled != 3 || r.NextDue == nil || r.OverdueSeconds != 0 {
		t.Fatalf("retries %+v", st.Retries)
	}
	if d := st.DeadLetters; d == nil || d.Count != 0 || d.Newest != nil {
		t.Fatalf("dead letters %+v", st.DeadLetters)
	}
	names := map[string]monitor.Consumer{}
	for _, c := range st.Consumers {
		names[c.Name] = c
	}
	if c, ok := names[outbox.WorkerConsumer("tmobile")]; !ok || c.Stream != outbox.StreamLinks || c.Pending != 0 || c.AckPending != 0 {
		t.Fatalf("consumers %+v", st.Consumers)
	}
	if c, ok := names[outbox.DispatcherConsumer]; !ok || c.Stream != outbox.StreamEvents {
		t.Fatalf("consumers %+v", st.Consumers)
	}
	if c, ok := names[outbox.AdvisoryConsumer]; !ok || c.Stream != outbox.StreamAdvisories || c.Pending != 0 {
		t.Fatalf("consumers %+v: want the workers' consumer of max-deliveries advisories", st.Consumers)
	}

	// A dead letter shows at once (another monitor: no cache).
	msg := &nats.Msg{Subject: outbox.SubjectDeadLetterLinks, Data: []byte(`{}`), Header: nats.Header{}}
	msg.Header.Set(outbox.HeaderReason, "test")
	if _, err := b.s.JS.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	m2, _ := monitor.New(monitor.Config{Store: b.s.Store, JetStream: b.s.JS})
	bl, err := m2.Backlog(ctx)
	if err != nil || bl.DeadLetters == nil || bl.DeadLetters.Count != 1 || bl.DeadLetters.Newest == nil {
		t.Fatalf("backlog %+v %v", bl, err)
	}

	// The store's warnings are the status's; a server whose policy cannot
	// be read is named in the errors, with the others' warnings.
	warn := "Redis at 10.0.0.1:6379 evicts keys when full (maxmemory-policy allkeys-lru); set maxmemory-policy noeviction"
	m3, _ := monitor.New(monitor.Config{Store: evictingStore{b.s.Store, []string{warn}, nil}, JetStream: b.s.JS})
	if st, err := m3.Status(ctx); err != nil || len(st.Warnings) != 1 || st.Warnings[0] != warn || len(st.Errors) > 0 {
		t.Fatalf("an evicting Redis: %+v, %v", st, err)
	}
	m4, _ := monitor.New(monitor.Config{Store: evictingStore{b.s.Store, []string{warn}, errDown}, JetStream: b.s.JS})
	if st, err := m4.Status(ctx); err != nil || len(st.Warnings) != 1 || !slices.ContainsFunc(st.Errors, func(e string) bool {
		return strings.HasPrefix(e, "warnings: ") && strings.Contains(e, errDown.Error())
	}) {
		t.Fatalf("a policy that cannot be read: %+v, %v", st, err)
	}

	// The counting consumers are gone.
	events, err := b.s.JS.Stream(ctx, outbox.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if n := events.CachedInfo().State.Consumers; n != 1 {
		t.Fatalf("the events stream has %d consumers, want the dispatcher's only", n)
	}
}

// The collector exports the backlog; a part that cannot be read is left
// out of the scrape and named in the status's errors.
func TestCollectorAndUnreadableParts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.m.Collector())
	gauge := func(name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metrics:
			for _, m := range mf.GetMetric() {
				for i := 0; i+1 < len(labels); i += 2 {
					found := false
					for _, l := range m.GetLabel() {
						found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
					}
					if !found {
						continue metrics
					}
				}
				return m.GetGauge().GetValue()
			}
		}
		return -1
	}
	// A first reading, as a running process has one: a scrape waits only
	// half a second for it, which a loaded machine could outrun.
	if _, err := b.m.Backlog(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := gauge("linkflow_links_pending"); n != 1 {
		t.Fatalf("linkflow_links_pending %v", n)
	}
	if n := gauge("linkflow_consumer_pending", "consumer", "worker-tmobile"); n != 0 {
		t.Fatalf("linkflow_consumer_pending{worker-tmobile} %v", n)
	}
	if n := gauge("linkflow_consumer_ack_pending", "consumer", "dispatcher"); n != 0 {
		t.Fatalf("linkflow_consumer_ack_pending{dispatcher} %v", n)
	}
	for _, name := range []string{"linkflow_outbox_entries", "linkflow_outbox_oldest_seconds", "linkflow_dead_letters",
		"linkflow_webhook_retry_overdue_seconds", "linkflow_consumer_redelivered"} {
		if gauge(name, "consumer", "dispatcher") < 0 && gauge(name) < 0 {
			t.Errorf("%s is not exported", name)
		}
	}

	// Redis cannot be read: JetStream's parts still are.
	m, err := monitor.New(monitor.Config{Store: brokenStore{b.s.Store}, JetStream: b.s.JS})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Outbox != nil || st.Retries != nil || st.Links != nil || st.FailingHosts != nil || st.Failures != nil ||
		st.Consumers == nil || st.DeadLetters == nil || st.Finished == nil {
		t.Fatalf("status with Redis down: %+v", st)
	}
	if !strings.Contains(strings.Join(st.Errors, "\n"), "redis: redis is down") {
		t.Fatalf("errors %v", st.Errors)
	}
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(m.Collector())
	mfs, err := reg2.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}
	if exported["linkflow_outbox_entries"] || exported["linkflow_links_pending"] || !exported["linkflow_dead_letters"] ||
		!exported["linkflow_consumer_pending"] {
		t.Fatalf("with Redis down, exported %v", exported)
	}
}

var errDown = errors.New("redis is down")

// evictingStore answers EvictionWarnings with warnings and err.
type evictingStore struct {
	monitor.Store
	warnings []string
	err      error
}

func (s evictingStore) EvictionWarnings(context.Context) ([]string, error) { return s.warnings, s.err }

type brokenStore struct{ monitor.Store }

func (brokenStore) Backlog(context.Context, int) (*linkflow.Backlog, error) { return nil, errDown }
func (brokenStore) EventRecords(context.Context, []string) (map[string]linkflow.StoredEvent, error) {
	return nil, errDown
}

// A scrape does not wait long for a Redis that does not answer: the
// process's other metrics go out without the backlog.
func TestCollectorDoesNotWaitLong(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	if err := outbox.EnsureStreams(context.Background(), js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(monitor.Config{Store: hangingStore{}, JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "other", Help: "another metric of the process"})
	reg.MustRegister(m.Collector(), other)
	start := time.Now()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("the scrape took %s", took)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "other" {
		t.Fatalf("gathered %v", mfs)
	}
}

type hangingStore struct{ monitor.Store }

func (hangingStore) Backlog(ctx context.Context, _ int) (*linkflow.Backlog, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// While Redis hangs, every reading of the backlog takes the whole Timeout,
// longer than a scrape waits: the scrapes export the latest reading (its
// JetStream parts, and how old it is), so alerts on them do not fall silent.
func TestCollectorExportsTheLatestReadingWhileRedisHangs(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	if err := outbox.EnsureStreams(context.Background(), js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(monitor.Config{Store: hangingStore{}, JetStream: js, Timeout: time.Second, CacheFor: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	gathered := func() map[string]bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, mf := range mfs {
			out[mf.GetName()] = true
		}
		return out
	}
	testenv.Eventually(t, 10*time.Second, "a scrape with the dead letters", func() bool { return gathered()["linkflow_dead_letters"] })
	// Each scrape from now on starts a reading that hangs for a second.
	for range 3 {
		got := gathered()
		if !got["linkflow_dead_letters"] || !got["linkflow_backlog_age_seconds"] || got["linkflow_outbox_entries"] {
			t.Fatalf("a scrape while Redis hangs exported %v", got)
		}
	}
}

// Claimed links of an integration no worker serves (its consumer is made by
// the first worker that serves it) are counted under that consumer's name,
// marked missing, so the pending alert and the status see them.
func TestBacklogCountsLinksNoWorkerServes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	if err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.EnsureWorkerConsumer(ctx, js, "tmobile", outbox.ConsumerConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, integ := range []string{"tmobile", "att", "att"} {
		if _, err := js.Publish(ctx, outbox.SubjectClaimed+integ, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := monitor.New(monitor.Config{Store: brokenStore{}, JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]monitor.Consumer{}
	for _, c := range b.Consumers {
		got[c.Name] = c
	}
	if c := got[outbox.WorkerConsumer("att")]; !c.Missing || c.Pending != 2 || c.Stream != outbox.StreamLinks {
		t.Fatalf("consumers %+v: want worker-att missing with 2 pending", b.Consumers)
	}
	if c := got[outbox.WorkerConsumer("tmobile")]; c.Missing || c.Pending != 1 {
		t.Fatalf("consumers %+v: want worker-tmobile with 1 pending", b.Consumers)
	}
	// Exported: its pending messages, and no ack-pending series (which the
	// "links nobody serves" alert tells it by).
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]bool{}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "consumer" {
					series[mf.GetName()+"{"+l.GetValue()+"}"] = true
				}
			}
		}
	}
	if !series["linkflow_consumer_pending{worker-att}"] || series["linkflow_consumer_ack_pending{worker-att}"] ||
		!series["linkflow_consumer_ack_pending{worker-tmobile}"] {
		t.Fatalf("exported series %v", series)
	}
}

// The newest dead letter is one that is there: a replay deletes a letter,
// and the stream's own last time stays that of the deleted one.
func TestNewestDeadLetterAfterAReplay(t *testing.T) {
	t.Parallel()
	rdb, renv := testenv.Redis(t)
	kr, err := store.ParseKeyring(store.GenerateKey("m1"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr, Prefix: renv.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	_, _, js := testenv.NATS(t)
	ctx := context.Background()
	if err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	var acks []*jetstream.PubAck
	for i := range 6 {
		ack, err := js.Publish(ctx, "linkflow.dlq.tmobile", []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
	}
	s, err := js.Stream(ctx, outbox.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(monitor.Config{Store: st, JetStream: js, CacheFor: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		replayed []int // deleted now
		newest   int
	}{{nil, 5}, {[]int{5, 4, 3}, 2}, {[]int{0}, 2}} {
		for _, i := range tc.replayed {
			if err := s.DeleteMsg(ctx, acks[i].Sequence); err != nil {
				t.Fatal(err)
			}
		}
		want, err := s.GetMsg(ctx, acks[tc.newest].Sequence)
		if err != nil {
			t.Fatal(err)
		}
		// The backlog is cached for a millisecond: the one read after the
		// delete is the one judged.
		testenv.Eventually(t, 5*time.Second, fmt.Sprintf("the newest dead letter after deleting %v to be %d's", tc.replayed, tc.newest), func() bool {
			b, err := m.Backlog(ctx)
			return err == nil && b.DeadLetters != nil && b.DeadLetters.Newest != nil && b.DeadLetters.Newest.Equal(want.Time)
		})
	}
	// One request each time: no consumer made to find it (a listing's
	// would linger for its inactive threshold).
	info, err := s.Info(ctx)
	if err != nil || info.State.Consumers != 0 {
		t.Fatalf("the dead-letter stream has %d consumers after the reads (%v)", info.State.Consumers, err)
	}
}
