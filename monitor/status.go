package monitor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

// Status is the backlog and what happened lately. A part whose source could
// not be read is nil, and Errors says why.
type Status struct {
	Backlog
	// Finished counts the links that ended in each of Config.Windows.
	Finished []Finished `json:"finished"`
	// Failures are the codes of the newest failed links.
	Failures *Failures `json:"failures"`
	// FailingHosts are the webhook receivers whose deliveries fail now.
	FailingHosts *FailingHosts `json:"failingHosts"`
	// Warnings name what puts stored data at risk, and what to do: a Redis
	// server that would evict keys when full.
	Warnings []string `json:"warnings,omitempty"`
}

// FinishedStatuses are the statuses a link ends with, in the order they
// are shown.
var FinishedStatuses = []linkflow.Status{linkflow.StatusSucceeded, linkflow.StatusFailed,
	linkflow.StatusCanceled, linkflow.StatusExpired}

// Finished counts the links that ended within a window, by status.
type Finished struct {
	Seconds int64             `json:"seconds"`
	Counts  map[string]uint64 `json:"counts"`
}

// Failures are the codes of the newest failed links. Total links failed in
// the last Seconds (the first of Config.Windows); the codes are those of
// the Read failed since Since: all of them, or when there were more than
// FailureSample, about the newest FailureSample (Since moves closer to now
// in proportion).
type Failures struct {
	Seconds int64       `json:"seconds"`
	Total   uint64      `json:"total"`
	Since   time.Time   `json:"since"`
	Read    int         `json:"read"`
	Codes   []CodeCount `json:"codes"`
}

// CodeCount is how many of the failures read had one code.
type CodeCount struct {
	Code  string `json:"code"`
	Count int    `json:"count"`
}

// FailingHosts are the webhook receivers whose deliveries fail now:
// pending deliveries in the retry schedule that were attempted and not
// delivered, by host, the most first. Sampled is how many schedule entries
// were read (Config.HostSample per shard, the soonest due).
type FailingHosts struct {
	Sampled int           `json:"sampled"`
	Hosts   []FailingHost `json:"hosts"`
}

// FailingHost is one receiver's failing deliveries.
type FailingHost struct {
	Host       string `json:"host"`
	Deliveries int    `json:"deliveries"`
	// LastStatusCode (0: no response) and LastError are the latest failed
	// attempt's, at LastAttemptAt.
	LastStatusCode int       `json:"lastStatusCode"`
	LastError      string    `json:"lastError,omitempty"`
	LastAttemptAt  time.Time `json:"lastAttemptAt"`
	// Since is when the oldest of its failing deliveries was created.
	Since time.Time `json:"since"`
}

// computeStatus adds what happened lately to the backlog.
func (m *Monitor) computeStatus(ctx context.Context) (*Status, error) {
	b, err := m.Backlog(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Backlog: *b}
	st.Errors = slices.Clone(b.Errors)
	now := m.cfg.Now()
	var wg sync.WaitGroup
	var finErr, hostErr, evictErr error
	wg.Go(func() { st.Finished, finErr = m.finished(ctx, now) })
	wg.Go(func() { st.FailingHosts, hostErr = m.failingHosts(ctx) })
	wg.Go(func() { st.Warnings, evictErr = m.cfg.Store.EvictionWarnings(ctx) })
	wg.Wait()
	st.addError("links finished", finErr)
	st.addError("failing hosts", hostErr)
	st.addError("warnings", evictErr)
	if finErr == nil {
		var failErr error
		st.Failures, failErr = m.failures(ctx, now, st.Finished[0].Counts[string(linkflow.StatusFailed)])
		st.addError("failures", failErr)
	}
	return st, nil
}

// finished counts link events by type in each window, in the events
// stream.
func (m *Monitor) finished(ctx context.Context, now time.Time) ([]Finished, error) {
	out := make([]Finished, len(m.cfg.Windows))
	for i, w := range m.cfg.Windows {
		out[i] = Finished{Seconds: int64(w / time.Second), Counts: map[string]uint64{}}
		for _, s := range FinishedStatuses {
			n, err := m.countSince(ctx, outbox.EventsOfType(linkflow.LinkEventType(s)), now.Add(-w))
			if err != nil {
				return nil, err
			}
			out[i].Counts[string(s)] = n
		}
	}
	return out, nil
}

// countSince counts the events stream's messages on subject since a time:
// the pending count of a consumer that starts there.
func (m *Monitor) countSince(ctx context.Context, subject string, since time.Time) (uint64, error) {
	cons, done, err := m.eventsFrom(ctx, subject, since)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", subject, err)
	}
	defer done()
	return cons.CachedInfo().NumPending, nil
}

// eventsFrom makes a consumer of the events stream's messages on subject
// from a time on, for one question; done deletes it (it would go by itself
// a minute after its last use).
func (m *Monitor) eventsFrom(ctx context.Context, subject string, since time.Time) (jetstream.Consumer, func(), error) {
	js, err := m.jetStream()
	if err != nil {
		return nil, nil, err
	}
	cons, err := js.CreateConsumer(ctx, outbox.StreamEvents, jetstream.ConsumerConfig{
		FilterSubject: subject, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute, MemoryStorage: true, Replicas: 1,
	})
	if err != nil {
		return nil, nil, err
	}
	return cons, func() {
		err := js.DeleteConsumer(ctx, outbox.StreamEvents, cons.CachedInfo().Name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			m.log.Debug("delete a question's consumer", zap.Error(err))
		}
	}, nil
}

// failures reads the codes of the newest failed links: total failed in the
// first window; when that is more than FailureSample, the window shrinks
// in proportion, so that about the newest FailureSample are read.
func (m *Monitor) failures(ctx context.Context, now time.Time, total uint64) (*Failures, error) {
	w := m.cfg.Windows[0]
	f := &Failures{Seconds: int64(w / time.Second), Since: now.Add(-w).UTC(), Total: total, Codes: []CodeCount{}}
	if total == 0 {
		return f, nil
	}
	sample := m.cfg.FailureSample
	since := f.Since
	if total > uint64(sample) {
		since = now.Add(-max(time.Second, time.Duration(float64(w)*float64(sample)/float64(total)))).UTC()
	}
	cons, done, err := m.eventsFrom(ctx, outbox.EventsOfType(linkflow.LinkEventType(linkflow.StatusFailed)), since)
	if err != nil {
		return nil, fmt.Errorf("read failed links: %w", err)
	}
	defer done()
	var ids []string
	for len(ids) < sample {
		batch, err := cons.FetchNoWait(min(sample-len(ids), 256))
		if err != nil {
			return nil, fmt.Errorf("read failed links: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			if e, err := outbox.ParseEvent(msg.Data()); err == nil {
				ids = append(ids, e.EventID)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read failed links: %w", err)
		}
		if got == 0 {
			break
		}
	}
	recs, err := m.cfg.Store.EventRecords(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read failed links' records: %w", err)
	}
	counts := map[string]int{}
	for _, id := range ids {
		rec, ok := recs[id]
		if !ok {
			continue // past its retention
		}
		var body struct {
			Data struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			} `json:"data"`
		}
		_ = json.Unmarshal(rec.Body, &body)
		counts[cmp.Or(body.Data.Error.Code, "UNKNOWN")]++
		f.Read++
	}
	f.Since = since
	for code, n := range counts {
		f.Codes = append(f.Codes, CodeCount{Code: code, Count: n})
	}
	slices.SortFunc(f.Codes, func(a, b CodeCount) int { return cmp.Or(b.Count-a.Count, cmp.Compare(a.Code, b.Code)) })
	return f, nil
}

// failingHosts groups the failing deliveries of a sample of the retry
// schedule by host.
func (m *Monitor) failingHosts(ctx context.Context) (*FailingHosts, error) {
	b, err := m.cfg.Store.Backlog(ctx, m.cfg.HostSample)
	if err != nil {
		return nil, err
	}
	ds := b.Retrying
	out := &FailingHosts{Sampled: len(ds), Hosts: []FailingHost{}}
	byHost := map[string]*FailingHost{}
	for _, d := range ds {
		if d.Status != linkflow.DeliveryPending || d.Attempts == 0 || (d.LastStatusCode >= 200 && d.LastStatusCode < 300) {
			continue
		}
		host := d.URL
		if u, err := url.Parse(d.URL); err == nil && u.Host != "" {
			host = u.Host
		}
		h := byHost[host]
		if h == nil {
			h = &FailingHost{Host: host, Since: d.CreatedAt.UTC()}
			byHost[host] = h
		}
		h.Deliveries++
		if d.LastAttemptAt.After(h.LastAttemptAt) {
			h.LastAttemptAt, h.LastStatusCode, h.LastError = d.LastAttemptAt.UTC(), d.LastStatusCode, d.LastError
		}
		if !d.CreatedAt.IsZero() && d.CreatedAt.Before(h.Since) {
			h.Since = d.CreatedAt.UTC()
		}
	}
	for _, h := range byHost {
		out.Hosts = append(out.Hosts, *h)
	}
	slices.SortFunc(out.Hosts, func(a, b FailingHost) int {
		return cmp.Or(b.Deliveries-a.Deliveries, cmp.Compare(a.Host, b.Host))
	})
	if len(out.Hosts) > m.cfg.MaxHosts {
		out.Hosts = out.Hosts[:m.cfg.MaxHosts]
	}
	return out, nil
}
