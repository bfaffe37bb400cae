package testenv

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/outbox"
)

// NATS starts an embedded JetStream server for the test and returns its URL
// and a connected JetStream client; all are closed when the test ends.
func NATS(t testing.TB) (string, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s, err := embedded.StartNATS(embedded.NATSOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, js := connect(t, s.ClientURL(), func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL(), nc, js
}

// Publisher starts an outbox publisher for the test on js and st; it stops
// when the test ends. log may be nil.
func Publisher(t testing.TB, js jetstream.JetStream, st outbox.Store, log *zap.Logger) *outbox.Publisher {
	t.Helper()
	p, err := outbox.NewPublisher(outbox.PublisherConfig{JetStream: js, Store: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// NATSCluster starts a 3-server JetStream cluster of the test's own
// (embedded servers routed on loopback, cluster "linkflow-test") and
// returns it with a JetStream client connected to every server; all is
// closed when the test ends. Streams on it take 3 replicas.
func NATSCluster(t testing.TB) (*embedded.NATSCluster, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	c, err := embedded.StartNATSCluster(embedded.NATSClusterOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, js := connect(t, c.URL, c.Shutdown, nats.MaxReconnects(-1))
	return c, nc, js
}

// connect connects a JetStream client to url for the test. When the test
// ends the client closes, then shutdown stops the servers (at once if the
// client cannot connect).
func connect(t testing.TB, url string, shutdown func(), opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	t.Cleanup(shutdown) // cleanups run last first: after the client's
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
