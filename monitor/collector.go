package monitor

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Collector returns the Prometheus collector of the backlog: on each
// scrape it reads Backlog (at most once every CacheFor, whoever scrapes)
// and exports what it could read, or the latest reading when this one
// takes too long (linkflow_backlog_age_seconds says how old). Every process that registers it exports
// the same deployment-wide numbers: aggregate them with max, not sum.
// (The size of the webhook retry schedule is the dispatchers' own
// linkflow_webhook_retry_schedule_size.)
func (m *Monitor) Collector() prometheus.Collector {
	return &collector{m: m,
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linkflow_consumer_pending",
			Help: "Messages of a JetStream consumer not delivered yet: worker-<integration>, claimed links waiting for a worker; dispatcher, events waiting for a dispatcher."},
			[]string{"consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linkflow_consumer_ack_pending",
			Help: "Messages of a JetStream consumer delivered and not acknowledged yet: sessions running or waiting for an MFA answer, events being accepted."},
			[]string{"consumer"}),
		redelivered: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linkflow_consumer_redelivered",
			Help: "Messages of a JetStream consumer delivered more than once and not acknowledged yet."},
			[]string{"consumer"}),
		outboxEntries: prometheus.NewGauge(prometheus.GaugeOpts{Name: "linkflow_outbox_entries",
			Help: "Messages recorded in the outbox in Redis and not yet confirmed by JetStream (every shard)."}),
		outboxOldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "linkflow_outbox_oldest_seconds",
			Help: "Age of the oldest outbox entry: since it was recorded or last taken for republishing; 0 when the outbox is empty."}),
		retryOverdue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "linkflow_webhook_retry_overdue_seconds",
			Help: "How long the earliest entry of the webhook retry schedule is past due; 0 when none is due. Growing: no dispatcher takes retries."}),
		deadLetters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "linkflow_dead_letters",
			Help: "Messages in the dead-letter stream LINKFLOW_DLQ (linkflow dlq list)."}),
		linksPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "linkflow_links_pending",
			Help: "Links created and not claimed yet (nor expired)."}),
		age: prometheus.NewGauge(prometheus.GaugeOpts{Name: "linkflow_backlog_age_seconds",
			Help: "How long ago the backlog gauges were read from JetStream and Redis (a scrape that cannot wait for a fresh reading exports the latest one)."}),
	}
}

// collectWait is how long a scrape waits for the backlog; past it, the
// scrape exports the latest backlog read, if it is at most staleBacklog
// old.
const (
	collectWait  = 500 * time.Millisecond
	staleBacklog = 5 * time.Minute
)

type collector struct {
	m *Monitor

	mu                                      sync.Mutex // Collect sets the gauges, then collects them
	pending, ackPending, redelivered        *prometheus.GaugeVec
	outboxEntries, outboxOldest             prometheus.Gauge
	retryOverdue, deadLetters, linksPending prometheus.Gauge
	age                                     prometheus.Gauge
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range c.all() {
		g.Describe(ch)
	}
}

func (c *collector) all() []prometheus.Collector {
	return []prometheus.Collector{c.pending, c.ackPending, c.redelivered, c.outboxEntries, c.outboxOldest,
		c.retryOverdue, c.deadLetters, c.linksPending, c.age}
}

// Collect exports the parts of the backlog that could be read; a part that
// could not is left out of the scrape rather than reported as zero.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	b := c.backlog()
	if b == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.Consumers != nil {
		c.pending.Reset()
		c.ackPending.Reset()
		c.redelivered.Reset()
		for _, cons := range b.Consumers {
			c.pending.WithLabelValues(cons.Name).Set(float64(cons.Pending))
			if cons.Missing {
				continue // only its messages: no consumer delivers them
			}
			c.ackPending.WithLabelValues(cons.Name).Set(float64(cons.AckPending))
			c.redelivered.WithLabelValues(cons.Name).Set(float64(cons.Redelivered))
		}
		c.pending.Collect(ch)
		c.ackPending.Collect(ch)
		c.redelivered.Collect(ch)
	}
	if b.Outbox != nil {
		c.outboxEntries.Set(float64(b.Outbox.Entries))
		c.outboxOldest.Set(b.Outbox.OldestSeconds)
		c.outboxEntries.Collect(ch)
		c.outboxOldest.Collect(ch)
	}
	if b.Retries != nil {
		c.retryOverdue.Set(b.Retries.OverdueSeconds)
		c.retryOverdue.Collect(ch)
	}
	if b.DeadLetters != nil {
		c.deadLetters.Set(float64(b.DeadLetters.Count))
		c.deadLetters.Collect(ch)
	}
	if b.Links != nil {
		c.linksPending.Set(float64(b.Links.Pending))
		c.linksPending.Collect(ch)
	}
	c.age.Set(max(0, c.m.cfg.Now().Sub(b.At).Seconds()))
	c.age.Collect(ch)
}

// backlog is the backlog a scrape exports, or nil. A scrape waits for it a
// short while only: the process's other metrics must not wait for a Redis
// or NATS that does not answer. A reading that takes longer goes on (and
// the next scrapes get it), and this scrape exports the latest one read
// instead: a Redis that hangs would otherwise take every gauge, JetStream's
// too, out of every scrape, and the alerts on them would fall silent.
func (c *collector) backlog() *Backlog {
	type result struct {
		b   *Backlog
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := c.m.Backlog(context.Background())
		done <- result{b, err}
	}()
	var why string
	select {
	case r := <-done:
		if r.err == nil {
			return r.b
		}
		why = r.err.Error()
	case <-time.After(collectWait):
		why = "reading Redis and JetStream takes too long"
	}
	last, at, ok := c.m.backlog.latest()
	if !ok || c.m.cfg.Now().Sub(at) > staleBacklog {
		c.m.log.Warn("backlog metrics: this scrape goes without them", zap.String("why", why))
		return nil
	}
	c.m.log.Warn("backlog metrics: this scrape exports the latest reading", zap.String("why", why),
		zap.Duration("age", c.m.cfg.Now().Sub(at).Round(time.Millisecond)))
	return last
}
