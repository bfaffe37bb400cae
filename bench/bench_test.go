package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

// linkflowBin is the linkflow binary bench starts in these tests, built once.
var linkflowBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "linkflow-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	linkflowBin = filepath.Join(dir, "linkflow")
	if out, err := exec.Command("go", "build", "-o", linkflowBin, "../cmd/linkflow").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build linkflow: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// config is a small run of mode's: a handful of links, quiet.
func config(links int) Config {
	return Config{Binary: linkflowBin, Links: links, Concurrency: 4, WorkerConcurrency: 8, Timeout: 2 * time.Minute,
		Progress: io.Discard}
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())
	return rep
}

func TestWorkerOnly(t *testing.T) {
	cfg := config(20)
	cfg.WorkerOnly = true
	rep := run(t, cfg)
	if rep.Mode != "worker only" || rep.Completed != 20 || len(rep.Errors) != 0 {
		t.Fatalf("mode %q, completed %d of 20, errors %v", rep.Mode, rep.Completed, rep.Errors)
	}
	if rep.LinksPerSecond <= 0 || len(rep.Processes) != 1 || rep.Processes[0].PeakRSSBytes <= 0 {
		t.Fatalf("links/s %v, processes %+v", rep.LinksPerSecond, rep.Processes)
	}
	if len(rep.CPU) != 3 || rep.CPU[2].Name != "worker-1" {
		t.Fatalf("cpu %+v: want redis, bench+nats, worker-1", rep.CPU)
	}
	if rep.AOF == nil || rep.AOF.Rewrites != 0 || rep.AOF.BytesPerLink <= 0 {
		t.Fatalf("aof %+v: want the bytes 20 links appended", rep.AOF)
	}
}

// Worker only on a Redis Cluster bench starts (one run can put 1 and 3
// masters side by side), and on a Redis and NATS someone else runs (bench's
// keys under a prefix of their own).
func TestWorkerOnlyOnClusters(t *testing.T) {
	cfg := config(20)
	cfg.WorkerOnly, cfg.RedisMasters = true, 3
	rep := run(t, cfg)
	if rep.Completed != 20 || len(rep.Errors) != 0 || len(rep.CPU) != 5 || rep.AOF == nil || rep.AOF.BytesPerLink <= 0 {
		t.Fatalf("on 3 masters: completed %d of 20, errors %v, cpu %+v, aof %+v", rep.Completed, rep.Errors, rep.CPU, rep.AOF)
	}
	_, renv := testenv.Redis(t)
	natsURL, _, _ := testenv.NATS(t)
	cfg = config(20)
	cfg.WorkerOnly, cfg.RedisURL, cfg.RedisCluster, cfg.NATSURL = true, renv.URL, renv.Cluster, natsURL
	if rep := run(t, cfg); rep.Completed != 20 || len(rep.Errors) != 0 {
		t.Fatalf("on given servers: completed %d of 20, errors %v", rep.Completed, rep.Errors)
	}
}

func TestDispatcherOnly(t *testing.T) {
	cfg := config(10)
	cfg.DispatcherOnly = true
	rep := run(t, cfg)
	if rep.Completed != 10 || rep.BadSignatures != 0 || rep.DeliveriesPerSecond <= 0 {
		t.Fatalf("completed %d of 10, bad signatures %d, deliveries/s %v", rep.Completed, rep.BadSignatures, rep.DeliveriesPerSecond)
	}
	if rep.AOF == nil || rep.AOF.BytesPerLink <= 0 {
		t.Fatalf("aof %+v: want the bytes 10 deliveries appended", rep.AOF)
	}
}

func TestEndToEndEmbedded(t *testing.T) {
	cfg := config(10)
	cfg.Embedded = true
	rep := run(t, cfg)
	if rep.Completed != 10 || len(rep.Errors) != 0 || rep.BadSignatures != 0 {
		t.Fatalf("completed %d of 10, errors %v, bad signatures %d", rep.Completed, rep.Errors, rep.BadSignatures)
	}
	for _, span := range []string{"create", "claim->webhook", "create->webhook", "stage started->completed"} {
		if rep.Latency[span].Count != 10 {
			t.Errorf("latency %s: %d samples, want 10", span, rep.Latency[span].Count)
		}
	}
}

// The API's refusals are counted by the API's error code, through the
// client's *Error.
func TestEndToEndCountsAPIErrorCodes(t *testing.T) {
	cfg := config(3).withDefaults()
	dep, err := startDevDeployment(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dep.stop(false)
	cfg.URL, cfg.APIKey, cfg.WebhookSecret = dep.url, "lfk_not_a_key_of_this_deployment", dep.secret
	rep := run(t, cfg)
	if rep.Completed != 0 || rep.Errors["UNAUTHORIZED"] != 3 {
		t.Fatalf("completed %d, errors %v: want UNAUTHORIZED=3", rep.Completed, rep.Errors)
	}
}

// Calls that get no answer are NETWORK errors.
func TestEndToEndCountsNetworkErrors(t *testing.T) {
	addr, err := freeAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(3)
	cfg.URL, cfg.APIKey, cfg.WebhookSecret = "http://"+addr, store.NewAPIKey(), store.NewWebhookSecret()
	rep := run(t, cfg)
	if rep.Completed != 0 || rep.Errors["NETWORK"] != 3 {
		t.Fatalf("completed %d, errors %v: want NETWORK=3", rep.Completed, rep.Errors)
	}
}

// finished counts completion events in the events stream by type: here
// failed links, whose link.failed events wait there (nothing consumes them).
func TestFinishedCountsEventsByType(t *testing.T) {
	ctx := context.Background()
	b, err := startBareDeployment(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.stop(false)
	if err := b.preload(ctx, 3, func(int) (linkflow.Message, error) {
		c, err := b.st.CreateLink(ctx, linkflow.NewLink{OrgID: b.org.ID, IntegrationID: "tmobile",
			Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}}, ExpiresIn: time.Hour})
		if err != nil {
			return linkflow.Message{}, err
		}
		fin, err := b.st.FailLink(ctx, b.org.ID, c.Link.ID, linkflow.LinkError{Code: linkflow.FailureDeclined, Message: "test"})
		if err != nil {
			return linkflow.Message{}, err
		}
		return fin.Event, nil
	}); err != nil {
		t.Fatal(err)
	}
	var done, failed int
	testenv.Eventually(t, 10*time.Second, "3 link.failed events in the stream", func() bool {
		done, failed, err = b.finished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return done == 3
	})
	if failed != 3 {
		t.Fatalf("failed %d, want 3", failed)
	}
}

func TestConfig(t *testing.T) {
	cfg := Config{}.withDefaults()
	if cfg.URL != defaultURL || cfg.Links != 1000 || cfg.Concurrency != 64 || cfg.OpsPerLink != 2 ||
		cfg.Integration != "tmobile" || cfg.WorkerConcurrency != 256 || cfg.Timeout != 10*time.Minute || cfg.Progress != os.Stderr {
		t.Fatalf("defaults: %+v", cfg)
	}
	for name, c := range map[string]Config{
		"both modes":          {Binary: "x", WorkerOnly: true, DispatcherOnly: true},
		"no binary":           {WorkerOnly: true},
		"no API key":          {WebhookSecret: "whsec_x"},
		"negative links":      {Binary: "x", WorkerOnly: true, Links: -1},
		"negative rate":       {APIKey: "k", WebhookSecret: "s", Rate: -1},
		"embedded, no binary": {Embedded: true},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%s: Run accepted %+v", name, c)
		}
	}
}
