package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// Attempt is one webhook attempt as GET /v1/links/{linkId}/deliveries lists
// it.
type Attempt struct {
	// Attempt numbers the event's attempts, whatever their trigger.
	Attempt   int    `json:"attempt"`
	EventID   string `json:"eventId"`
	WebhookID string `json:"webhookId"`
	// Trigger is why it was made: initial, retry, manual (redeliver) or
	// replay.
	Trigger   string `json:"trigger"`
	Timestamp int64  `json:"timestamp"`
	// DurationMs is how long the request took.
	DurationMs int64 `json:"durationMs"`
	// StatusCode is null when no response came (timeout, refused...).
	StatusCode   *int   `json:"statusCode"`
	Error        string `json:"error,omitempty"`
	ResponseBody string `json:"responseBody,omitempty"`
	// Outcome is what the attempt led to: succeeded, retrying, failed,
	// gone.
	Outcome string `json:"outcome"`
	// NextRetryAt is when the next attempt is due, when one is.
	NextRetryAt *int64 `json:"nextRetryAt"`
	// Superseded is set when a redelivery or another dispatcher changed the
	// delivery while this attempt ran: its outcome was not applied.
	Superseded bool `json:"superseded,omitempty"`
}

// process attempts one delivery the caller claimed (in the retry schedule,
// hidden from others for the visibility timeout) and records the outcome. It
// runs on a global slot the caller took and reports whether it still holds
// it at the end (it gives it up while it queues for a busy host).
func (d *Dispatcher) process(j job) (holdsSlot bool) {
	holdsSlot = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := d.log.With(zap.String("org_id", j.ref.OrgID), zap.String("event_id", j.ref.EventID))
	del := j.del
	if del == nil {
		var err error
		if del, err = d.store.Delivery(ctx, j.ref.OrgID, j.ref.EventID); errors.Is(err, store.ErrNotFound) {
			log.Warn("scheduled delivery without state; dropping it")
			_ = d.store.RemoveDeliveryRetry(ctx, j.ref)
			return
		} else if err != nil {
			log.Warn("read delivery; it comes back after the visibility timeout", zap.Error(err))
			return
		}
	}
	if del.Terminal() {
		_ = d.store.RemoveDeliveryRetry(ctx, j.ref)
		return
	}
	now := d.cfg.Now()
	if del.NextAt.After(now) {
		// Claimed early (a crash between recording and rescheduling): put
		// it back at its own time.
		d.reschedule(ctx, log, j.ref, del.NextAt, del.Version)
		return
	}
	target, err := url.Parse(del.URL)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		d.record(ctx, log, j.ref, del, &result{class: resultInvalid, err: "invalid webhook URL"}, now)
		return
	}
	host := strings.ToLower(target.Host)
	ok, wait, reason := d.gate.acquire(host)
	if !ok && reason == deferHostBusy {
		// A busy host: queue for its next slot without holding a global one,
		// so other hosts' deliveries go on meanwhile.
		d.freeSlot()
		ok = d.gate.await(host, d.cfg.HostQueue, d.cfg.HostQueueWait, d.stopCh)
		if holdsSlot = d.takeSlot(); !holdsSlot {
			if ok {
				d.gate.release(host, false, false)
			}
			d.reschedule(ctx, log, j.ref, now, del.Version)
			return
		}
		now = d.cfg.Now()
	}
	if !ok {
		d.metrics.deferral(reason)
		d.reschedule(ctx, log, j.ref, now.Add(jitter(wait, 0.2)), del.Version)
		return
	}
	healthy, failed := false, false
	defer func() { d.gate.release(host, healthy, failed) }()

	ev := j.ev
	if ev == nil {
		if ev, err = d.store.Event(ctx, j.ref.OrgID, del.StreamID); errors.Is(err, store.ErrNotFound) {
			d.record(ctx, log, j.ref, del, &result{class: resultNoEvent, err: "the event is no longer in the event log"}, now)
			return
		} else if err != nil {
			log.Warn("read event; retrying shortly", zap.Error(err))
			d.reschedule(ctx, log, j.ref, now.Add(d.cfg.HostRetryDelay), del.Version)
			return
		}
	}
	org, err := d.store.Org(ctx, j.ref.OrgID)
	if err != nil {
		log.Warn("read organization; retrying shortly", zap.Error(err))
		d.reschedule(ctx, log, j.ref, now.Add(d.cfg.HostRetryDelay), del.Version)
		return
	}

	r := d.send(d.attemptCtx, target, ev, org.WebhookSecrets, now)
	healthy, failed = r.delivered() || (r.statusCode > 0 && !r.hostFailure()), r.hostFailure()
	if r.class == resultCanceled {
		// Stopping: hand it back for another dispatcher, unrecorded.
		hctx, hcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer hcancel()
		d.reschedule(hctx, log, j.ref, now, del.Version)
		return
	}
	d.metrics.attempt(&r)
	d.record(ctx, log, j.ref, del, &r, now)
	return
}

// record logs an attempt and applies its decision: reschedule, or take the
// delivery out of the schedule when it is final.
func (d *Dispatcher) record(ctx context.Context, log *zap.Logger, ref store.DeliveryRef, del *store.Delivery, r *result, at time.Time) {
	dec := d.decide(del, r, d.cfg.Now())
	a := Attempt{
		EventID: del.EventID, WebhookID: del.EventID, Trigger: cmpTrigger(del.Trigger),
		Timestamp: at.UnixMilli(), DurationMs: r.duration.Milliseconds(), Error: r.err,
		ResponseBody: r.body, Outcome: outcomeOf(dec.status), NextRetryAt: linkflow.Millis(dec.nextAt),
	}
	if r.statusCode > 0 {
		a.StatusCode = &r.statusCode
	}
	entry, _ := json.Marshal(a)
	_, err := d.store.RecordAttempt(ctx, store.AttemptRecord{
		OrgID: ref.OrgID, EventID: del.EventID, LinkID: del.LinkID, Version: del.Version, At: at,
		Entry: entry, StatusCode: r.statusCode, Error: r.err, Delivered: r.delivered(),
		Status: dec.status, Step: dec.step, NextAt: dec.nextAt, Trigger: dec.trigger,
		LogCap: d.cfg.AttemptLogSize, FailedRetention: d.cfg.FailedRetention,
	})
	switch {
	case errors.Is(err, store.ErrFenced):
		// A redelivery or another dispatcher changed the delivery meanwhile;
		// the schedule entry is theirs.
		log.Info("attempt superseded", zap.String("result", r.class))
		return
	case errors.Is(err, store.ErrNotFound):
		_ = d.store.RemoveDeliveryRetry(ctx, ref)
		return
	case err != nil:
		// The attempt stays claimed and comes back after the visibility
		// timeout: at least once, never lost.
		log.Warn("record attempt", zap.Error(err))
		return
	}
	if dec.status == store.DeliveryPending {
		d.reschedule(ctx, log, ref, dec.nextAt, del.Version+1)
		return
	}
	if err := d.store.RemoveDeliveryRetry(ctx, ref); err != nil {
		log.Warn("unschedule delivery; the next claim drops it", zap.Error(err))
	}
	var latency time.Duration
	if dec.status == store.DeliverySucceeded && !del.CreatedAt.IsZero() {
		latency = d.cfg.Now().Sub(del.CreatedAt)
	}
	d.metrics.finish(dec.status, latency)
	if dec.status == store.DeliveryFailed {
		log.Warn("webhook delivery failed for good", zap.Int("attempts", del.Attempts+1), zap.String("last_error", r.err))
	}
}

func (d *Dispatcher) reschedule(ctx context.Context, log *zap.Logger, ref store.DeliveryRef, at time.Time, version int64) {
	if err := d.store.SetDeliveryRetry(ctx, ref, at, version); err != nil {
		log.Warn("reschedule delivery; it comes back after the visibility timeout", zap.Error(err))
		return
	}
	d.wakeAt(at)
}

func cmpTrigger(t string) string {
	if t == "" {
		return store.TriggerInitial
	}
	return t
}

func outcomeOf(status string) string {
	if status == store.DeliveryPending {
		return "retrying"
	}
	return status
}
