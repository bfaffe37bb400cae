package monitor_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/monitor"
)

func TestParseProbes(t *testing.T) {
	t.Parallel()
	got, err := monitor.ParseProbes(" api=127.0.0.1:9090, worker=https://w.internal:9091 ,127.0.0.1:9092,")
	want := []monitor.ProbeTarget{{"api", "127.0.0.1:9090"}, {"worker", "https://w.internal:9091"}, {"127.0.0.1:9092", "127.0.0.1:9092"}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("%v %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
	if _, err := monitor.ParseProbes("api="); err == nil {
		t.Fatal("an empty address parsed")
	}
}

// A probe reads both of /readyz's answers: every check when ready, the
// failing ones when not; and says when nothing answers.
func TestProbeReady(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("not connected (RECONNECTING)") }
	ready := httptest.NewServer(api.Health([]api.ReadyCheck{{Name: "redis", Check: ok}, {Name: "nats", Check: ok}}))
	t.Cleanup(ready.Close)
	waiting := httptest.NewServer(api.Health([]api.ReadyCheck{{Name: "redis", Check: ok}, {Name: "nats", Check: down}}))
	t.Cleanup(waiting.Close)
	gone := httptest.NewServer(nil)
	gone.Close()

	ps := monitor.ProbeAll(context.Background(), nil, []monitor.ProbeTarget{
		{Role: "api", Addr: ready.Listener.Addr().String()}, {Role: "worker", Addr: waiting.URL},
		{Role: "dispatcher", Addr: gone.Listener.Addr().String()}})
	if p := ps[0]; !p.Ready || p.Checks["redis"] != "ok" || p.Checks["nats"] != "ok" || p.Error != "" {
		t.Fatalf("ready: %+v", p)
	}
	if p := ps[1]; p.Ready || p.Checks["nats"] != "not connected (RECONNECTING)" || len(p.Checks) != 1 || p.Error != "" {
		t.Fatalf("not ready: %+v", p)
	}
	if p := ps[2]; p.Ready || p.Error == "" {
		t.Fatalf("nothing answers: %+v", p)
	}
	err := monitor.NotReady(ps)
	if !errors.Is(err, monitor.ErrNotReady) || err.Error() != "not ready: dispatcher ("+gone.Listener.Addr().String()+"), worker ("+waiting.URL+")" {
		t.Fatalf("NotReady: %v", err)
	}
	if monitor.NotReady(ps[:1]) != nil {
		t.Fatal("a ready process is not ready")
	}
}

// A probe address may carry a password (https://user:pw@host): the probe's
// address, its error and the not-ready message show it redacted.
func TestProbeHidesAPassword(t *testing.T) {
	t.Parallel()
	gone := httptest.NewServer(nil)
	gone.Close()
	addr := "http://ops:s3cret-pw@" + gone.Listener.Addr().String()
	ps := monitor.ProbeAll(context.Background(), nil, []monitor.ProbeTarget{{Role: "api", Addr: addr}})
	err := monitor.NotReady(ps)
	for _, shown := range []string{ps[0].Addr, ps[0].Error, err.Error()} {
		if strings.Contains(shown, "s3cret-pw") {
			t.Fatalf("the probe shows the password: %q", shown)
		}
	}
	if !strings.Contains(ps[0].Addr, gone.Listener.Addr().String()) {
		t.Fatalf("the probe's address %q does not name the host", ps[0].Addr)
	}
}
