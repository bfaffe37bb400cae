package testenv

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/linkflow/linkflow/internal/embedded"
)

// NATS starts an embedded JetStream server for the test and returns its URL
// and a connected JetStream client; all are closed when the test ends.
func NATS(t testing.TB) (string, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s, err := embedded.StartNATS(embedded.NATSOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		s.Shutdown()
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL(), nc, js
}
