package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
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
	// gone. A redelivery or replay that did not deliver is failed, whatever
	// the delivery went back to.
	Outcome string `json:"outcome"`
	// NextRetryAt is when the next attempt is due, when one is.
	NextRetryAt *int64 `json:"nextRetryAt"`
	// Superseded is set when a redelivery or another dispatcher changed the
	// delivery while this attempt ran: its outcome was not applied.
	Superseded bool `json:"superseded,omitempty"`
}

// process attempts one delivery the caller claimed (in the retry schedule,
// hidden from others until j.claim) and records the outcome. It runs on a
// global slot the caller took and reports whether it still holds it at the
// end (it gives it up while it queues for a busy host).
func (d *Dispatcher) process(j job) (holdsSlot bool) {
	holdsSlot = true
	log := d.log.WithLazy(zap.String("org_id", j.ref.OrgID), zap.String("event_id", j.ref.EventID))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del, ev := j.del, j.ev
	if del == nil {
		var err error
		if del, ev, err = d.store.LoadDelivery(ctx, j.ref.OrgID, j.ref.EventID); errors.Is(err, linkflow.ErrNotFound) {
			log.Warn("scheduled delivery without state; dropping it")
			d.settle(log, j, time.Time{})
			return
		} else if err != nil {
			log.Warn("read delivery; it comes back after the visibility timeout", zap.Error(err))
			return
		}
	}
	if del.Terminal() {
		d.settle(log, j, time.Time{})
		return
	}
	now := d.cfg.Now()
	if del.NextAt.After(now) {
		// Claimed early (a crash between recording and rescheduling): put
		// it back at its own time.
		d.settle(log, j, del.NextAt)
		return
	}
	target, err := url.Parse(del.URL)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		d.record(log, j, del, &result{class: resultInvalid, err: "invalid webhook URL"}, now)
		return
	}
	if ev == nil {
		d.record(log, j, del, &result{class: resultNoEvent, err: "the event is no longer in the event log"}, now)
		return
	}
	secrets, err := d.secrets.secrets(ctx, j.ref.OrgID)
	if err != nil {
		// Tried again, less often the longer it lasts. When it will not
		// mend by itself (the organization gone, its secret sealed with a key
		// no longer given), failed as a host that kept failing is
		// (BreakerGiveUp), so that it can be replayed once mended; Redis out
		// of reach is waited out.
		overdue := now.Sub(del.NextAt)
		lasting := errors.Is(err, linkflow.ErrNotFound) || errors.Is(err, linkflow.ErrUnsealable)
		if lasting && overdue > d.cfg.BreakerGiveUp {
			log.Error("read organization; the delivery fails", zap.Error(err))
			d.record(log, j, del, &result{class: resultNoSecret, err: "not sent: the organization's signing secret " +
				"could not be read for longer than the retry schedule lasts"}, now)
			return
		}
		log.Warn("read organization; retrying", zap.Error(err))
		d.settle(log, j, now.Add(min(max(d.cfg.HostRetryDelay, overdue/8), 5*time.Minute)))
		return
	}

	// Each organization's deliveries to a host have their own slots and
	// breaker: a tenant whose endpoint on a shared host (hooks.zapier.com)
	// fails or hangs does not hold back another tenant's.
	host := gateKey(j.ref.OrgID, strings.ToLower(target.Host))
	ok, wait, reason := d.gate.acquire(host)
	probe := reason == grantProbe // a busy host's queued slot is never a probe
	if !ok && reason == deferHostBusy {
		// A busy host: queue for its next slot without holding a global one,
		// so other hosts' deliveries go on meanwhile (hostGate.await).
		var queued bool
		ok, queued = d.gate.await(host, d.freeSlot, d.stopCh)
		if queued {
			holdsSlot = d.takeSlot()
		}
		if !holdsSlot || (!ok && d.stopping.Load()) {
			// Stopping: hand it back for another dispatcher.
			if ok {
				d.gate.release(host, probe, false, false)
			}
			d.settle(log, j, now)
			return
		}
		now = d.cfg.Now()
	}
	if !ok {
		d.metrics.deferral(reason)
		if reason == deferBreakerOpen && now.Sub(del.NextAt) > d.cfg.BreakerGiveUp {
			d.record(log, j, del, &result{class: resultHostDown, err: "not sent: the host kept failing, and its circuit " +
				"breaker held this delivery back longer than the retry schedule lasts"}, now)
			return
		}
		// Later, never sooner: one sent back before the breaker lets a
		// probe through would only come round again. But back by the time
		// it gives up.
		wait += time.Duration(rand.Int64N(int64(wait)/5 + 1))
		if reason == deferBreakerOpen {
			wait = min(wait, del.NextAt.Add(d.cfg.BreakerGiveUp+time.Millisecond).Sub(now))
		}
		d.settle(log, j, now.Add(wait))
		return
	}
	if claimLeft := j.claim.Sub(d.cfg.Now()); !j.claim.IsZero() && claimLeft < d.cfg.Timeout+d.claimSlack() {
		// The wait for the host used up the claim: past it another
		// dispatcher may take the delivery and send it too. Hand it back.
		d.metrics.deferral(deferClaimShort)
		d.gate.release(host, probe, false, false)
		d.settle(log, j, now)
		return
	}
	r := d.send(d.attemptCtx, target, ev, secrets, now)
	// The host's part is over: its slot goes to the next delivery while this
	// one is recorded.
	d.gate.release(host, probe, r.delivered() || (r.statusCode > 0 && !r.hostFailure()), r.hostFailure())
	if r.class == resultCanceled {
		// Stopping: hand it back for another dispatcher, unrecorded.
		d.settle(log, j, now)
		return
	}
	d.metrics.attempt(&r)
	d.record(log, j, del, &r, now)
	return
}

// claimSlack is what an attempt needs of its claim beyond Timeout, to
// record its outcome: a second, or a quarter of what Visibility leaves over
// Timeout when that is less.
func (d *Dispatcher) claimSlack() time.Duration {
	return min(time.Second, (d.cfg.Visibility-d.cfg.Timeout)/4)
}

// record logs an attempt, applies its decision and settles the schedule
// entry (reschedule, or out of the schedule when it is final) in one round
// trip.
func (d *Dispatcher) record(log *zap.Logger, j job, del *linkflow.Delivery, r *result, at time.Time) {
	now := d.cfg.Now()
	dec := d.decide(del, r, now)
	outcome := outcomeOf(dec.status)
	if del.Once && !r.delivered() && dec.status != linkflow.DeliveryGone {
		// A redelivery or replay that did not deliver failed, whatever the
		// delivery goes back to (succeeded, say).
		outcome = linkflow.DeliveryFailed
	}
	a := Attempt{
		EventID: del.EventID, WebhookID: del.EventID, Trigger: cmpTrigger(del.Trigger),
		Timestamp: at.UnixMilli(), DurationMs: r.duration.Milliseconds(), Error: r.err,
		ResponseBody: r.body, Outcome: outcome, NextRetryAt: linkflow.Millis(dec.nextAt),
	}
	if r.statusCode > 0 {
		a.StatusCode = &r.statusCode
	}
	entry, _ := json.Marshal(a)
	// A context of its own: the attempt may have used up the one before it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.store.RecordAttempt(ctx, linkflow.AttemptRecord{
		OrgID: j.ref.OrgID, EventID: del.EventID, LinkID: del.LinkID, Version: del.Version, At: at,
		Entry: entry, StatusCode: r.statusCode, Error: r.err, Delivered: r.delivered(),
		Status: dec.status, Step: dec.step, NextAt: dec.nextAt, Trigger: dec.trigger,
		LogCap: d.cfg.AttemptLogSize, FailedRetention: d.cfg.FailedRetention,
		Claim: j.claim, Now: now,
	})
	switch {
	case errors.Is(err, linkflow.ErrFenced):
		// A redelivery or another dispatcher changed the delivery meanwhile:
		// the decision is dropped. Where this process's claim still held,
		// the entry is due now (the redelivery's own wake-up may not come).
		log.Info("attempt superseded", zap.String("result", r.class))
		d.kick()
		return
	case errors.Is(err, linkflow.ErrNotFound):
		// No state (expired): whatever is left in the schedule is dropped by
		// whoever claims it.
		return
	case err != nil:
		// The attempt stays claimed and comes back after the visibility
		// timeout: at least once, never lost.
		log.Warn("record attempt", zap.Error(err))
		return
	}
	if dec.status == linkflow.DeliveryPending {
		d.wakeAt(dec.nextAt)
		return
	}
	if del.Once && dec.status == cmpStatus(del.OnceFrom) {
		// A redelivery or replay left the delivery where it was: it did not
		// finish again (counted, and warned about, once).
		return
	}
	// From the delivery's acceptance to its success, through retries; a
	// redelivery or replay asked for later is no measure of it.
	var latency time.Duration
	if dec.status == linkflow.DeliverySucceeded && !del.CreatedAt.IsZero() && scheduled(del.Trigger) {
		latency = now.Sub(del.CreatedAt)
	}
	d.metrics.finish(dec.status, latency)
	if dec.status == linkflow.DeliveryFailed {
		log.Warn("webhook delivery failed for good", zap.Int("attempts", del.Attempts+1), zap.String("last_error", r.err))
	}
}

// settle moves this process's claimed schedule entry to next, or takes it
// out of the schedule when next is zero, unless someone changed it since.
func (d *Dispatcher) settle(log *zap.Logger, j job, next time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.store.SettleDeliveryRetry(ctx, j.ref, j.claim, d.cfg.Now(), next); err != nil {
		log.Warn("reschedule delivery; it comes back after the visibility timeout", zap.Error(err))
		return
	}
	if !next.IsZero() {
		d.wakeAt(next)
	}
}

func cmpTrigger(t string) string {
	if t == "" {
		return linkflow.TriggerInitial
	}
	return t
}

func outcomeOf(status string) string {
	if status == linkflow.DeliveryPending {
		return "retrying"
	}
	return status
}
