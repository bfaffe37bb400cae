package embedded

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSClusterOptions configure a JetStream cluster of in-process NATS
// servers.
type NATSClusterOptions struct {
	// Dir holds each server's JetStream store, in Dir/<server name>.
	// Required.
	Dir string
	// Servers is the cluster's size. Default 3.
	Servers int
	// Ports are the servers' client ports, one each; nil picks free ports.
	// Given ports let a test hand the URL out before the cluster runs.
	Ports []int
	// Name is the cluster's name. Default "linkflow-test".
	Name string
	// Timeout bounds the start, until JetStream has a meta leader that
	// knows every server. Default 60s.
	Timeout time.Duration
}

// NATSCluster is a running JetStream cluster of in-process NATS servers
// routed to each other on loopback, named nats-1, nats-2, ...
type NATSCluster struct {
	// URL names every server's client address, comma-separated, as
	// nats.Connect and --nats-url take it.
	URL     string
	mu      sync.Mutex
	servers []*server.Server
}

// StartNATSCluster starts opts.Servers NATS servers with JetStream, each
// with its own store, routes between them on loopback, and returns once
// JetStream has a meta leader that counts every server as a current peer.
func StartNATSCluster(opts NATSClusterOptions) (_ *NATSCluster, err error) {
	if opts.Servers == 0 {
		opts.Servers = 3
	}
	if opts.Ports != nil && len(opts.Ports) != opts.Servers {
		return nil, fmt.Errorf("nats cluster: %d ports for %d servers", len(opts.Ports), opts.Servers)
	}
	if opts.Name == "" {
		opts.Name = "linkflow-test"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	// The route ports are picked free before the servers bind them, so
	// another process may take one meanwhile (a busy test suite does): the
	// server that lost it never gets ready. Start again on other ports, in
	// fresh store directories.
	for try := 1; ; try++ {
		c, err := startNATSCluster(opts, filepath.Join(dir, "try"+strconv.Itoa(try)))
		if err == nil || !errors.Is(err, errNotListening) || try == 3 {
			return c, err
		}
	}
}

// errNotListening is a server of the cluster that did not get ready to
// take connections: a port it was given was taken.
var errNotListening = errors.New("not ready (a port taken?)")

func startNATSCluster(opts NATSClusterOptions, dir string) (_ *NATSCluster, err error) {
	// Every server routes to every other, as deploy/nats-cluster.conf does:
	// the route ports must be known before any server starts.
	routePorts := make([]int, opts.Servers)
	routes := make([]*url.URL, opts.Servers)
	for i := range routePorts {
		if routePorts[i], err = freePort(); err != nil {
			return nil, err
		}
		routes[i] = &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(routePorts[i])}
	}
	c := &NATSCluster{}
	defer func() {
		if err != nil {
			c.Shutdown()
		}
	}()
	urls := make([]string, opts.Servers)
	for i := range opts.Servers {
		name := "nats-" + strconv.Itoa(i+1)
		port := -1
		if opts.Ports != nil {
			port = opts.Ports[i]
		}
		s, err := server.NewServer(&server.Options{
			ServerName: name, Host: "127.0.0.1", Port: port,
			JetStream: true, StoreDir: filepath.Join(dir, name),
			Cluster: server.ClusterOpts{Name: opts.Name, Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  routes,
			NoLog:   true, NoSigs: true,
		})
		if err != nil {
			return nil, fmt.Errorf("nats cluster: %s: %w", name, err)
		}
		go s.Start()
		c.servers = append(c.servers, s)
	}
	for i, s := range c.servers {
		if !s.ReadyForConnections(min(opts.Timeout, 15*time.Second)) {
			return nil, fmt.Errorf("nats cluster: %s %w", s.Name(), errNotListening)
		}
		urls[i] = s.ClientURL()
	}
	c.URL = strings.Join(urls, ",")
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// WaitReady waits until one running server is JetStream's meta leader, it
// counts every running server as a peer, and every running server's view
// of the meta group is current.
func (c *NATSCluster) WaitReady(ctx context.Context) error {
	for {
		why := c.notReady()
		if why == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats cluster: JetStream not ready: %s", why)
		case <-time.After(10 * time.Millisecond): // a poll interval
		}
	}
}

func (c *NATSCluster) notReady() string {
	running := c.Running()
	var leader *server.Server
	for _, s := range running {
		if s.JetStreamIsLeader() {
			leader = s
		}
	}
	if leader == nil {
		return "no meta leader"
	}
	if peers := leader.JetStreamClusterPeers(); len(peers) < len(running) {
		return fmt.Sprintf("meta leader %s knows %d of %d servers", leader.Name(), len(peers), len(running))
	}
	for _, s := range running {
		if !s.JetStreamIsCurrent() {
			return s.Name() + " not current"
		}
	}
	return ""
}

// Servers returns every server, stopped ones included.
func (c *NATSCluster) Servers() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*server.Server(nil), c.servers...)
}

// Running returns the servers that run.
func (c *NATSCluster) Running() []*server.Server {
	var out []*server.Server
	for _, s := range c.Servers() {
		if s.Running() {
			out = append(out, s)
		}
	}
	return out
}

// Server returns the server called name, or nil.
func (c *NATSCluster) Server(name string) *server.Server {
	for _, s := range c.Servers() {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// StopServer shuts the server called name down, as a crash of its node
// would (for a test that takes a stream leader away), and waits until it
// stopped.
func (c *NATSCluster) StopServer(name string) error {
	s := c.Server(name)
	if s == nil {
		return errors.New("nats cluster: no server " + name)
	}
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

// Shutdown stops every server and waits.
func (c *NATSCluster) Shutdown() {
	if c == nil {
		return
	}
	var wg sync.WaitGroup
	for _, s := range c.Servers() {
		wg.Go(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
	}
	wg.Wait()
}
