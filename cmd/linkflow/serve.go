package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/startstop"
)

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

// addOps adds the server of opsHandler on addr to g, unless addr is empty
// (off).
func addOps(g *startstop.Group, addr string, reg *prometheus.Registry, ready []api.ReadyCheck, log *zap.Logger) {
	if addr == "" {
		return
	}
	g.Add("metrics server", newOpsServer(addr, reg, ready, log))
}

// newOpsServer is the server of opsHandler on addr.
func newOpsServer(addr string, reg *prometheus.Registry, ready []api.ReadyCheck, log *zap.Logger) *startstop.HTTPServer {
	return startstop.NewHTTPServer("metrics", addr,
		"choose another address with --metrics-addr, or empty to turn them off", opsHandler(reg, ready), log)
}
