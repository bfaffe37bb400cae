package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/startstop"
)

// httpService serves a handler as a startstop.Service: Start listens (a busy
// or wrong address fails the start) and serves in the background; Stop
// shuts down gracefully, letting requests in flight finish for up to 10s.
type httpService struct {
	name    string // what the log and errors call it
	addr    string
	hint    string // what to change when the address is busy
	handler http.Handler
	log     *zap.Logger
	// failed receives a serving error after the start.
	failed chan error
	once   startstop.Once
}

func newHTTPService(name, addr, hint string, h http.Handler, log *zap.Logger) *httpService {
	return &httpService{name: name, addr: addr, hint: hint, handler: h, log: log, failed: make(chan error, 1)}
}

func (h *httpService) Start(context.Context) error {
	return h.once.Start(func() (func(), error) {
		ln, err := net.Listen("tcp", h.addr)
		if err != nil {
			return nil, fmt.Errorf("%s on %s (%s): %w", h.name, h.addr, h.hint, err)
		}
		srv := &http.Server{Handler: h.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.failed <- fmt.Errorf("%s: %w", h.name, err)
			}
		}()
		h.log.Info(h.name+" listening", zap.String("addr", ln.Addr().String()))
		return func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}, nil
	})
}

func (h *httpService) Stop() { h.once.Stop() }

// opsHandler is what a process serves on its metrics address, never on the
// API's: Prometheus /metrics, pprof, and the probes /healthz and /readyz
// (for roles without an API of their own; the API serves them too).
func opsHandler(reg *prometheus.Registry, ready []api.ReadyCheck) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	health := api.Health(ready)
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	return mux
}

// opsService serves opsHandler on addr; nil when addr is empty (off).
func opsService(addr string, reg *prometheus.Registry, ready []api.ReadyCheck, log *zap.Logger) *httpService {
	if addr == "" {
		return nil
	}
	return newHTTPService("metrics", addr, "choose another address with --metrics-addr, or empty to turn them off",
		opsHandler(reg, ready), log)
}

// services is a process's services in the order they start; they stop in
// the reverse order.
type services struct {
	group  startstop.Group
	failed []chan error
}

// add appends s unless it is nil.
func (ss *services) add(name string, s startstop.Service) {
	if s == nil {
		return
	}
	if h, ok := s.(*httpService); ok {
		if h == nil {
			return
		}
		ss.failed = append(ss.failed, h.failed)
	}
	ss.group.Add(name, s)
}

// run starts the services, calls started (when not nil), waits until ctx
// ends (SIGTERM) or an HTTP server fails, and stops them.
func (ss *services) run(ctx context.Context, started func()) error {
	if err := ss.group.Start(ctx); err != nil {
		return err
	}
	defer ss.group.Stop()
	if started != nil {
		started()
	}
	failed := make(chan error, 1)
	for _, ch := range ss.failed {
		go func() {
			select {
			case err := <-ch:
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
