package webhooks

import (
	"math/rand/v2"
	"time"

	"github.com/linkflow/linkflow"
)

// decision is what an attempt leads to: the delivery's next state.
type decision struct {
	status  string
	step    int
	nextAt  time.Time
	trigger string
}

// scheduled reports whether an attempt made with trigger takes a step of the
// schedule. Manual redeliveries and replays do not use up a retry.
func scheduled(trigger string) bool {
	return trigger == "" || trigger == linkflow.TriggerInitial || trigger == linkflow.TriggerRetry
}

// decide turns an attempt's result into the delivery's next state.
func (d *Dispatcher) decide(del *linkflow.Delivery, r *result, now time.Time) decision {
	switch {
	case r.delivered():
		return decision{status: linkflow.DeliverySucceeded, step: del.Step}
	case r.class == resultGone:
		return decision{status: linkflow.DeliveryGone, step: del.Step}
	case (r.class == resultHostDown || r.class == resultNoSecret) && del.Once:
		// A redelivery never sent: back to where it was.
		return decision{status: cmpStatus(del.OnceFrom), step: del.Step}
	case r.permanent():
		return decision{status: linkflow.DeliveryFailed, step: del.Step}
	case del.Once:
		// A single extra attempt of a finished delivery: back to where it was.
		return decision{status: cmpStatus(del.OnceFrom), step: del.Step}
	}
	step := del.Step
	if scheduled(del.Trigger) {
		step++
	}
	if step >= len(d.cfg.Schedule) {
		return decision{status: linkflow.DeliveryFailed, step: step}
	}
	delay := jitter(d.cfg.Schedule[step], d.cfg.Jitter)
	// Retry-After lengthens the wait, never shortens it: a receiver that
	// asks for a second would otherwise use up the schedule in seconds.
	delay = max(delay, r.retryAfter)
	trigger := linkflow.TriggerRetry
	if step == 0 {
		trigger = linkflow.TriggerInitial
	}
	return decision{status: linkflow.DeliveryPending, step: step, nextAt: now.Add(delay), trigger: trigger}
}

func cmpStatus(s string) string {
	if s == "" || s == linkflow.DeliveryPending {
		return linkflow.DeliveryFailed
	}
	return s
}

// jitter spreads d by +-frac so that retries of many deliveries do not align.
func jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 || frac <= 0 {
		return d
	}
	f := 1 + frac*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}
