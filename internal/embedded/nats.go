package embedded

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSOptions configure an embedded NATS server.
type NATSOptions struct {
	// Dir is where JetStream stores its data. Required.
	Dir string
	// Host and Port to listen on. Defaults 127.0.0.1 and -1 (a random port).
	Host string
	Port int
}

// StartNATS starts an in-process NATS server with JetStream and waits until
// it accepts connections. Stop it with Shutdown and WaitForShutdown.
func StartNATS(opts NATSOptions) (*server.Server, error) {
	if dir, err := filepath.Abs(opts.Dir); err == nil {
		opts.Dir = dir
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "linkflow-embedded",
		Host:       opts.Host, Port: opts.Port,
		JetStream: true, StoreDir: opts.Dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server not ready")
	}
	return s, nil
}
