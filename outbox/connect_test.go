package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/outbox"
)

// Issue 13: a fleet started at once on a fresh JetStream cluster came up
// with "ensure stream LINKFLOW_LINKS: context deadline exceeded". Four
// processes' connections start before any server does, and all of them
// wait, then create the 3-replica streams together.
func TestConnectWaitsForAClusterStartedLater(t *testing.T) {
	t.Parallel()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var urls []string
	for _, p := range ports {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var waitedMu sync.Mutex
	waited := map[string]bool{}
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			nc, _, err := outbox.Connect(ctx, outbox.ConnectConfig{
				URL: strings.Join(urls, ","), Name: fmt.Sprintf("fleet-%d", i),
				Streams: outbox.StreamConfig{Replicas: 3}, Logger: zaptest.NewLogger(t),
				Waiting: func(check string, _ error) {
					waitedMu.Lock()
					waited[check] = true
					waitedMu.Unlock()
				},
			})
			if err == nil {
				nc.Close()
			}
			errs[i] = err
		})
	}
	// The connections wait for a server before the cluster starts.
	testenv.Eventually(t, 10*time.Second, "Connect to say it waits for NATS", func() bool {
		waitedMu.Lock()
		defer waitedMu.Unlock()
		return waited["nats"]
	})
	start := time.Now()
	c, err := embedded.StartNATSCluster(embedded.NATSClusterOptions{Dir: t.TempDir(), Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	wg.Wait()
	t.Logf("4 connections ensured 3-replica streams %s after the cluster started", time.Since(start).Round(time.Millisecond))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	nc, err := nats.Connect(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.CheckStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{outbox.StreamLinks, outbox.StreamEvents, outbox.StreamDLQ, outbox.StreamAdvisories} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("%s: %d replicas", name, r)
		}
	}
}

// What no wait heals fails at once, naming the field to fix.
func TestConnectConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a credentials file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		cfg   outbox.ConnectConfig
		field string
	}{
		{"empty URL", outbox.ConnectConfig{}, "URL"},
		{"space in host", outbox.ConnectConfig{URL: "nats://exa mple:4222"}, "URL"},
		{"http scheme", outbox.ConnectConfig{URL: "http://127.0.0.1:4222"}, "URL"},
		{"bad port", outbox.ConnectConfig{URL: "nats://127.0.0.1:4222,127.0.0.1:99999"}, "URL"},
		{"no host", outbox.ConnectConfig{URL: "nats://:4222"}, "URL"},
		{"password, bad port", outbox.ConnectConfig{URL: "nats://u:s3cret@127.0.0.1:99999"}, "URL"},
		{"password, bad scheme", outbox.ConnectConfig{URL: "https://u:s3cret@127.0.0.1:4222"}, "URL"},
		{"password, bad escape", outbox.ConnectConfig{URL: "nats://u:s3%zzcret@127.0.0.1:4222"}, "URL"},
		{"missing creds", outbox.ConnectConfig{URL: "127.0.0.1:1", CredsFile: filepath.Join(dir, "none.creds")}, "CredsFile"},
		{"garbage creds", outbox.ConnectConfig{URL: "127.0.0.1:1", CredsFile: garbage}, "CredsFile"},
		{"missing CA", outbox.ConnectConfig{URL: "127.0.0.1:1", CAFile: filepath.Join(dir, "none.pem")}, "CAFile"},
		{"garbage CA", outbox.ConnectConfig{URL: "127.0.0.1:1", CAFile: garbage}, "CAFile"},
		{"cert without key", outbox.ConnectConfig{URL: "127.0.0.1:1", CertFile: garbage}, "CertFile"},
		{"garbage cert", outbox.ConnectConfig{URL: "127.0.0.1:1", CertFile: garbage, KeyFile: garbage}, "CertFile"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Nothing listens at 127.0.0.1:1: only the check can end Connect
			// before the deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _, err := outbox.Connect(ctx, tt.cfg)
			var ce *outbox.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("got %v, want a ConfigError of %s", err, tt.field)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "zzcret") {
				t.Fatalf("the error shows a password: %v", err)
			}
		})
	}
}

// A password the server refuses is a configuration error, not something to
// wait for.
func TestConnectAuthorizationViolation(t *testing.T) {
	t.Parallel()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Username: "linkflow", Password: "right", NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	addr := s.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, _, err = outbox.Connect(ctx, outbox.ConnectConfig{URL: "nats://linkflow:wrong@" + addr})
	var ce *outbox.ConfigError
	if !errors.As(err, &ce) || ce.Field != "URL" || !strings.Contains(err.Error(), "uthorization") {
		t.Fatalf("wrong password: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a refused password took %s to fail", d)
	}
	nc, _, err := outbox.Connect(ctx, outbox.ConnectConfig{URL: "nats://linkflow:right@" + addr})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

// Three replicas on a server that is not in a cluster cannot be: that is
// --stream-replicas to fix, not a wait.
func TestConnectReplicasOnSingleServer(t *testing.T) {
	t.Parallel()
	url, _, _ := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := outbox.Connect(ctx, outbox.ConnectConfig{URL: url, Streams: outbox.StreamConfig{Replicas: 3}})
	var ce *outbox.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Streams.Replicas" {
		t.Fatalf("3 replicas on one server: %v", err)
	}
}

// With nothing to connect to, Connect waits until its context ends.
func TestConnectGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, _, err := outbox.Connect(ctx, outbox.ConnectConfig{URL: fmt.Sprintf("127.0.0.1:%d", freePort(t))})
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, new(*outbox.ConfigError)) {
		t.Fatalf("got %v, want a deadline", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A stream an older linkflow made with another retention (the events
// stream was a work queue) cannot be changed in place: ensuring the streams
// says so at once, pointing at the upgrade note, instead of retrying.
func TestEnsureStreamsRefusesAnOldEventsStream(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: outbox.StreamEvents,
		Subjects: []string{outbox.SubjectEvents + ">"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{})
	var ce *outbox.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "older linkflow") {
		t.Fatalf("ensure over an old events stream: %v", err)
	}
}

// Ensuring the streams again (every process's start) keeps what an
// operator set on a stream by hand (a cap on its bytes, the discard policy,
// a description) and sets what linkflow owns back (its age).
func TestEnsureStreamsKeepsOperatorSettings(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	ctx := context.Background()
	if err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, outbox.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	want := cfg.MaxAge
	cfg.MaxBytes, cfg.Discard, cfg.Description, cfg.MaxAge = 1<<30, jetstream.DiscardNew, "capped by ops", time.Hour
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if st, err = js.Stream(ctx, outbox.StreamEvents); err != nil {
		t.Fatal(err)
	}
	got := st.CachedInfo().Config
	if got.MaxBytes != 1<<30 || got.Discard != jetstream.DiscardNew || got.Description != "capped by ops" || got.MaxAge != want {
		t.Fatalf("after ensuring again: max bytes %d, discard %v, description %q, max age %s (want %s)",
			got.MaxBytes, got.Discard, got.Description, got.MaxAge, want)
	}
}

// A stream of the account that already takes the subjects of one of
// linkflow's (one that keeps every JetStream advisory for auditing takes
// LINKFLOW_ADVISORIES') is a configuration no wait heals: Connect says so
// at once instead of waiting for JetStream forever.
func TestConnectRefusesAStreamOverlappingLinkflows(t *testing.T) {
	t.Parallel()
	url, _, js := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"$JS.EVENT.ADVISORY.>"}}); err != nil {
		t.Fatal(err)
	}
	_, _, err := outbox.Connect(ctx, outbox.ConnectConfig{URL: url})
	var ce *outbox.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "another stream") || ctx.Err() != nil {
		t.Fatalf("connect beside an overlapping stream: %v", err)
	}
}

// The dead letters' duplicate window (6 hours) fits where it can: capped at
// their max age, and the common window on a NATS whose max_duplicate_window
// is shorter (the server refuses a longer one), rather than no start.
func TestDeadLetterDuplicateWindowFits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	window := func(js jetstream.JetStream) time.Duration {
		t.Helper()
		s, err := js.Stream(ctx, outbox.StreamDLQ)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Duplicates
	}
	_, _, js := testenv.NATS(t)
	if err := outbox.EnsureStreams(ctx, js, outbox.StreamConfig{Memory: true, DLQMaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if w := window(js); w != time.Hour {
		t.Fatalf("with dead letters kept an hour, their duplicate window is %s", w)
	}

	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		JetStreamLimits: server.JSLimitOpts{Duplicates: 10 * time.Minute}, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	limited, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.EnsureStreams(ctx, limited, outbox.StreamConfig{Memory: true}); err != nil {
		t.Fatalf("ensure the streams on a NATS with max_duplicate_window 10m: %v", err)
	}
	if w := window(limited); w != 2*time.Minute {
		t.Fatalf("on a NATS with max_duplicate_window 10m, the dead letters' window is %s", w)
	}
}
