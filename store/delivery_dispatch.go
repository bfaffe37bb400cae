package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkflow/linkflow"

	"github.com/redis/go-redis/v9"
)

// The dispatcher's steps. A delivery's state and its entry in the retry
// schedule are in its event's shard, so each step is one script on one
// slot: accepting an event creates the state and claims the first attempt
// (delivery_accept.lua); recording an attempt logs it, applies its decision
// and settles the entry (delivery_record.lua with a linkflow.Claim). A claim
// is hidden from pollers until it expires; an entry is settled only while the
// caller's claim on it holds, so a redelivery that moved it since is never
// undone. Where a step's answer is lost, the claim is taken back (accept) or
// put back (record), so that nothing depends on a reply that never came.

var (
	deliveryAcceptScript = script("delivery_accept")
	deliveryLoadScript   = script("delivery_load")
	deliverySettleScript = script("delivery_settle")
)

// AcceptEvent creates the delivery state of an event, read from its record,
// unless it exists (a redelivered message never restarts a schedule), and
// puts a pending delivery in the retry schedule unless it is there already;
// when it returns without error the delivery no longer depends on the
// caller's message. All of it is one step. It returns linkflow.ErrNotFound
// when no event EventID of OrgID is recorded.
func (s *Store) AcceptEvent(ctx context.Context, a linkflow.EventAccept) (*linkflow.Accepted, error) {
	if !validID(a.OrgID) || !validID(a.EventID) {
		return nil, linkflow.ErrNotFound
	}
	if !a.ClaimUntil.After(a.Now) {
		return nil, fmt.Errorf("accept event %s: ClaimUntil must be after Now", a.EventID)
	}
	ref := linkflow.DeliveryRef{OrgID: a.OrgID, EventID: a.EventID}
	keys := []string{s.k.event(a.EventID), s.k.delivery(a.EventID), s.k.eventLink(a.EventID),
		s.k.retrySchedule(shardOf(ref.EventID))}
	args := []any{ms(a.Now), s.deliveryTTL(0).Milliseconds(), ms(a.FirstAt), a.OrgID, ms(a.ClaimUntil), refMember(ref)}
	acc, err := parseAccepted(a, deliveryAcceptScript.Run(ctx, s.rdb, keys, args...))
	if err != nil && !errors.Is(err, linkflow.ErrNotFound) {
		// No answer: the step may have claimed the delivery. Take the claim
		// back now (when it is still ours) rather than leave it to a poller
		// once it expires.
		rctx, cancel := repairContext(ctx)
		_, _ = s.SettleDeliveryRetry(rctx, ref, a.ClaimUntil, a.Now, time.Time{})
		cancel()
	}
	return acc, err
}

func parseAccepted(a linkflow.EventAccept, res *redis.Cmd) (*linkflow.Accepted, error) {
	v, err := res.Result()
	if err != nil {
		return nil, fmt.Errorf("accept event %s: %w", a.EventID, err)
	}
	arr, ok := v.([]any)
	if ok && len(arr) == 1 && arr[0] == "missing" {
		return nil, linkflow.ErrNotFound
	}
	if !ok || len(arr) < 3 {
		return nil, fmt.Errorf("accept event %s: unexpected reply %v", a.EventID, v)
	}
	acc := &linkflow.Accepted{Delivery: parseDelivery(a.OrgID, a.EventID, pairsToMap(arr[2])),
		Created: arr[0] == "created", Owned: arr[1] == "1"}
	if len(arr) > 3 {
		acc.Event = parseEventRecord(a.EventID, arr[3])
	}
	return acc, nil
}

// parseEventRecord reads an event from its record's field pairs.
func parseEventRecord(id string, v any) *linkflow.StoredEvent {
	ev := storedEvent(id, pairsToMap(v))
	return &ev
}

// LoadDelivery returns an event's delivery state and, while it is pending,
// the event (nil when it is no longer in the event log), in one round trip.
// It returns linkflow.ErrNotFound without state.
func (s *Store) LoadDelivery(ctx context.Context, org, eventID string) (*linkflow.Delivery, *linkflow.StoredEvent, error) {
	if !validID(org) || !validID(eventID) {
		return nil, nil, linkflow.ErrNotFound
	}
	v, err := deliveryLoadScript.Run(ctx, s.rdb, []string{s.k.delivery(eventID), s.k.event(eventID), s.k.eventLink(eventID)}, org).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("load delivery %s: %w", eventID, err)
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, nil, fmt.Errorf("load delivery %s: unexpected reply %v", eventID, v)
	}
	if len(arr) == 0 {
		return nil, nil, linkflow.ErrNotFound
	}
	d := parseDelivery(org, eventID, pairsToMap(arr[0]))
	var ev *linkflow.StoredEvent
	if len(arr) > 1 {
		ev = parseEventRecord(eventID, arr[1])
	}
	return d, ev, nil
}

// SettleDeliveryRetry moves a delivery's entry in the retry schedule, which
// the caller claimed until claim, to next, or removes it when next is zero;
// only while the claim holds (the entry is still at claim, and claim is
// after now). It reports whether it did: otherwise someone changed the
// entry since (a redelivery brought it forward, or the claim expired and
// another dispatcher owns it now) and the entry is theirs.
func (s *Store) SettleDeliveryRetry(ctx context.Context, ref linkflow.DeliveryRef, claim, now, next time.Time) (bool, error) {
	n, err := deliverySettleScript.Run(ctx, s.rdb, []string{s.k.retrySchedule(shardOf(ref.EventID))}, settleArgs(ref, claim, now, next)...).Int()
	if err != nil {
		return false, fmt.Errorf("settle delivery %s: %w", ref.EventID, err)
	}
	return n == 1, nil
}

// repairContext is for a step that repairs what a failed one may have left:
// it runs even when ctx has just expired.
func repairContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
}

func settleArgs(ref linkflow.DeliveryRef, claim, now, next time.Time) []any {
	to := ""
	if !next.IsZero() {
		to = fmt.Sprint(ms(next))
	}
	return []any{refMember(ref), ms(claim), ms(now), to}
}
