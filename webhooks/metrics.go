package webhooks

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's Prometheus metrics. A nil *metrics records
// nothing.
type metrics struct {
	attempts       *prometheus.CounterVec
	finished       *prometheus.CounterVec
	deferred       *prometheus.CounterVec
	attemptSeconds prometheus.Histogram
	latency        prometheus.Histogram
	scheduled      prometheus.Gauge
	breakerOpens   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return &metrics{
		attempts: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linkflow_webhook_attempts_total",
			Help: "Webhook attempts by result (2xx, 3xx, 4xx, 410, 429, 5xx, timeout, connection_refused, blocked, ...)."},
			[]string{"result"})),
		finished: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linkflow_webhook_deliveries_finished_total",
			Help: "Deliveries that reached a final status (succeeded, failed, gone); a redelivery or replay that leaves one where it was does not count it again."},
			[]string{"status"})),
		deferred: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linkflow_webhook_deferred_total",
			Help: "Deliveries put back without an attempt: their host was saturated (host_busy) or its breaker open (breaker_open), or the wait for it used up the claim (claim_short)."},
			[]string{"reason"})),
		attemptSeconds: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "linkflow_webhook_attempt_seconds", Help: "Duration of webhook attempts.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)})),
		latency: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "linkflow_webhook_delivery_latency_seconds",
			Help:    "Time from a dispatcher's acceptance of an event to its successful delivery, retries included (not redeliveries or replays).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600}})),
		scheduled: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "linkflow_webhook_retry_schedule_size", Help: "Deliveries waiting in the retry schedule (all organizations)."})),
		breakerOpens: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linkflow_webhook_breaker_opens_total", Help: "Times a target host's circuit breaker opened."})),
	}
}

// register registers c, or returns the collector already registered under
// its name (several dispatchers in one process share a registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *metrics) attempt(r *result) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(r.class).Inc()
	if r.duration > 0 {
		m.attemptSeconds.Observe(r.duration.Seconds())
	}
}

func (m *metrics) finish(status string, since time.Duration) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(status).Inc()
	if since > 0 {
		m.latency.Observe(since.Seconds())
	}
}

func (m *metrics) deferral(reason string) {
	if m != nil {
		m.deferred.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) breakerOpened() {
	if m != nil {
		m.breakerOpens.Inc()
	}
}

func (m *metrics) scheduleSize(n int64) {
	if m != nil {
		m.scheduled.Set(float64(n))
	}
}
