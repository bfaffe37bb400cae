package startstop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// HTTPServer serves a handler as a Service: Start listens (a busy or wrong
// address fails the start, saying Hint) and serves in the background; Stop
// shuts down gracefully, letting requests in flight finish for up to 10s.
// A serving error after the start arrives on Failed.
type HTTPServer struct {
	Name    string // what logs and errors call it
	Addr    string
	Hint    string // what to change when the address cannot be used
	Handler http.Handler
	Logger  *zap.Logger

	failed chan error
	once   Once
}

// MaxHeaderBytes bounds a request's headers (net/http's default is 1 MiB):
// a larger request is answered 431 by net/http itself, before any handler.
const MaxHeaderBytes = 64 << 10

// NewHTTPServer returns a server of h on addr.
func NewHTTPServer(name, addr, hint string, h http.Handler, log *zap.Logger) *HTTPServer {
	return &HTTPServer{Name: name, Addr: addr, Hint: hint, Handler: h, Logger: log, failed: make(chan error, 1)}
}

// Start listens and serves.
func (h *HTTPServer) Start(context.Context) error {
	return h.once.Start(func() (func(), error) {
		ln, err := net.Listen("tcp", h.Addr)
		if err != nil {
			return nil, fmt.Errorf("%s on %s (%s): %w", h.Name, h.Addr, h.Hint, err)
		}
		srv := &http.Server{Handler: h.Handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
			MaxHeaderBytes: MaxHeaderBytes}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.failed <- fmt.Errorf("%s: %w", h.Name, err)
			}
		}()
		h.Logger.Info(h.Name+" listening", zap.String("addr", ln.Addr().String()))
		return func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}, nil
	})
}

// Stop shuts the server down.
func (h *HTTPServer) Stop() { h.once.Stop() }

// Failed delivers a serving error that happened after the start.
func (h *HTTPServer) Failed() <-chan error { return h.failed }

// failer is a service that can fail after its start.
type failer interface{ Failed() <-chan error }

// Run starts the group, calls started (when not nil), waits until ctx ends
// or a service fails after its start (an HTTPServer whose Serve failed), and
// stops the group. It returns the start's error or the failure.
func (g *Group) Run(ctx context.Context, started func()) error {
	if err := g.Start(ctx); err != nil {
		return err
	}
	defer g.Stop()
	if started != nil {
		started()
	}
	failed := make(chan error, 1)
	for _, s := range g.services {
		f, ok := s.(failer)
		if !ok {
			continue
		}
		go func() {
			select {
			case err := <-f.Failed():
				select {
				case failed <- err:
				default:
				}
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}
