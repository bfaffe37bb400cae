package outbox

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dial connects to NATS once, for a command that looks at a running
// deployment or repairs it (linkflow status, linkflow dlq): unlike Connect
// it does not wait for a server, and it neither creates nor updates the
// streams (a command run with another --stream-replicas than the fleet's
// must not change them). It gives up after the connection timeout (5s).
// cfg.Streams, Waiting and the timing fields are not used.
func Dial(cfg ConnectConfig) (*nats.Conn, jetstream.JetStream, error) {
	cfg = cfg.withDefaults()
	opts, err := cfg.options()
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, nats.RetryOnFailedConnect(false))
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, nil, cfg.classify(fmt.Errorf("connect to NATS: %w", err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
