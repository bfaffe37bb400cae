package workflow

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkflow/linkflow"
)

// Metrics are the worker's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	sessionsStarted prometheus.Counter
	linksFinished   *prometheus.CounterVec
	retries         prometheus.Counter
	fencedCommits   prometheus.Counter
	deadLetters     prometheus.Counter
	ackExtensions   prometheus.Counter
	sessionsActive  prometheus.Gauge
	sessionSeconds  prometheus.Histogram
}

// NewMetrics registers the worker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessionsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linkflow_worker_sessions_started_total", Help: "Session attempts begun."}),
		linksFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linkflow_worker_links_finished_total", Help: "Links a worker process ended, by status and error code: its sessions' outcomes, and the links its sweeper expired or failed past their deadline and its dead-letter path failed."},
			[]string{"status", "code"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linkflow_worker_retries_total", Help: "Session attempts handed back for a retry after a transient error."}),
		fencedCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linkflow_worker_fenced_total", Help: "Commits or updates rejected because the lease was no longer this worker's."}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linkflow_worker_dead_letters_total", Help: "Messages copied to the dead-letter stream."}),
		ackExtensions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linkflow_worker_ack_extensions_total", Help: "In-progress acks sent to JetStream for sessions longer than a third of the ack wait."}),
		sessionsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "linkflow_worker_sessions_in_flight", Help: "Sessions running in this process."}),
		sessionSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "linkflow_worker_session_seconds", Help: "Duration of committed session attempts.",
			// Up to a challenge's 5 minutes and more, in steps a p99 can use.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}}),
	}
	reg.MustRegister(m.sessionsStarted, m.linksFinished, m.retries, m.fencedCommits, m.deadLetters,
		m.ackExtensions, m.sessionsActive, m.sessionSeconds)
	return m
}

func (m *Metrics) started() {
	if m != nil {
		m.sessionsStarted.Inc()
	}
}

func (m *Metrics) finished(l *linkflow.Link, took time.Duration) {
	if m == nil {
		return
	}
	var code linkflow.FailureCode
	if l.Error != nil {
		code = l.Error.Code
	}
	m.ended(l.Status, code)
	m.sessionSeconds.Observe(took.Seconds())
}

// ended counts a link ended without a session of this process: by the
// sweeper or the dead-letter path.
func (m *Metrics) ended(status linkflow.Status, code linkflow.FailureCode) {
	if m != nil {
		m.linksFinished.WithLabelValues(string(status), string(code)).Inc()
	}
}

func (m *Metrics) retried() {
	if m != nil {
		m.retries.Inc()
	}
}

func (m *Metrics) fenced() {
	if m != nil {
		m.fencedCommits.Inc()
	}
}

func (m *Metrics) deadLettered() {
	if m != nil {
		m.deadLetters.Inc()
	}
}

func (m *Metrics) ackExtended() {
	if m != nil {
		m.ackExtensions.Inc()
	}
}

func (m *Metrics) inFlight(d float64) {
	if m != nil {
		m.sessionsActive.Add(d)
	}
}
