package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's Prometheus metrics, per route: the pattern a
// request matched ("POST /v1/links", "GET /v1/links/{linkId}"), or
// "unmatched" for a path no route serves, so a route's label never carries
// an id. A nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewMetrics registers the API's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linkflow_api_requests_total", Help: "Requests answered, by route and status code."},
			[]string{"route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "linkflow_api_request_seconds", Help: "Time to answer a request, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "linkflow_api_requests_in_flight", Help: "Requests being answered."}),
	}
	reg.MustRegister(m.requests, m.seconds, m.inFlight)
	return m
}

func (m *Metrics) begin() {
	if m != nil {
		m.inFlight.Inc()
	}
}

// end records a request that matched route and was answered
// with status (0: the handler wrote nothing, which net/http answers 200).
func (m *Metrics) end(route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.inFlight.Dec()
	if status == 0 {
		status = 200
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.seconds.WithLabelValues(route).Observe(took.Seconds())
}
