package store

import (
	"context"
	"fmt"
	"time"

	"github.com/linkflow/linkflow"

	"github.com/redis/go-redis/v9"
)

// The dispatcher's round trips. Accepting an event is one: the state script
// on the organization's slot and the claim in the retry schedule go in one
// pipeline. Recording an attempt is one: the record script and the settling
// of the schedule entry go in one pipeline (RecordAttempt with a linkflow.Claim).
//
// The two slots may be on two Redis Cluster nodes, where a pipeline runs
// each node's part in parallel: neither step relies on the other having run
// first. A claim is hidden from pollers until it expires, by which time the
// state exists or the claim was taken back; a schedule entry is settled only
// while the caller's claim on it holds, so a redelivery that moved it since
// is never undone, and when the state step fails or loses its fence the
// entry is put back.

var (
	deliveryAcceptScript = script("delivery_accept")
	deliveryLoadScript   = script("delivery_load")
	deliverySettleScript = script("delivery_settle")
)

// AcceptEvent creates the delivery state of an event, read from the
// organization's event log, unless it exists (a redelivered message never
// restarts a schedule), and puts a pending delivery in the retry schedule
// unless it is there already; when it returns without error the delivery
// no longer depends on the caller's message. With the first attempt due at
// once, all of it is one round trip. It returns linkflow.ErrNotFound when the log
// holds no event EventID at StreamID.
func (s *Store) AcceptEvent(ctx context.Context, a linkflow.EventAccept) (*linkflow.Accepted, error) {
	if !validID(a.OrgID) || !validID(a.EventID) {
		return nil, linkflow.ErrNotFound
	}
	if !a.ClaimUntil.After(a.Now) {
		return nil, fmt.Errorf("accept event %s: ClaimUntil must be after Now", a.EventID)
	}
	ref := linkflow.DeliveryRef{OrgID: a.OrgID, EventID: a.EventID}
	keys := []string{s.k.event(a.EventID), s.k.delivery(a.EventID), s.k.eventLink(a.EventID)}
	args := []any{ms(a.Now), s.deliveryTTL(0).Milliseconds(), ms(a.FirstAt), a.OrgID}
	claimAtOnce := !a.FirstAt.After(a.Now)
	var res *redis.Cmd
	var add *redis.IntCmd
	if claimAtOnce {
		pipe := s.pipeline()
		res = pipe.Script(ctx, deliveryAcceptScript, keys, args...)
		add = pipe.ZAddNX(ctx, s.k.retrySchedule(shardOf(ref.EventID)), redis.Z{Score: float64(ms(a.ClaimUntil)), Member: refMember(ref)})
		_ = pipe.Exec(ctx) // each command's error is looked at below
	} else {
		res = deliveryAcceptScript.Run(ctx, s.rdb, keys, args...)
	}
	claimed := add != nil && add.Err() == nil && add.Val() == 1
	acc, err := parseAccepted(a, res)
	if err == nil && add != nil && add.Err() != nil {
		err = fmt.Errorf("accept event %s: claim: %w", a.EventID, add.Err())
	}
	if err != nil {
		if add != nil && (claimed || add.Err() != nil) {
			// The state may not exist: take the claim back now rather than
			// leave it to a poller once it expires.
			rctx, cancel := repairContext(ctx)
			_, _ = s.SettleDeliveryRetry(rctx, ref, a.ClaimUntil, a.Now, time.Time{})
			cancel()
		}
		return nil, err
	}
	d := acc.Delivery
	switch {
	case claimAtOnce && claimed:
		switch {
		case d.Terminal():
			// A redelivered message of a finished delivery.
			_, _ = s.SettleDeliveryRetry(ctx, ref, a.ClaimUntil, a.Now, time.Time{})
		case d.NextAt.After(a.Now):
			// A redelivered message of a delivery whose entry went missing
			// (a crash between its steps): back at its own time. Should this
			// fail, the claim brings it back when it expires.
			_, _ = s.SettleDeliveryRetry(ctx, ref, a.ClaimUntil, a.Now, d.NextAt)
		default:
			acc.Owned = true
		}
	case claimAtOnce:
		// Someone put it in the schedule already, and owns it.
	case !d.Terminal():
		at, own := d.NextAt, false
		if !at.After(a.Now) {
			at, own = a.ClaimUntil, true
		}
		added, err := s.rdb.ZAddNX(ctx, s.k.retrySchedule(shardOf(ref.EventID)), redis.Z{Score: float64(ms(at)), Member: refMember(ref)}).Result()
		if err != nil {
			return nil, fmt.Errorf("accept event %s: schedule: %w", a.EventID, err)
		}
		acc.Owned = own && added == 1
	}
	return acc, nil
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
	if !ok || len(arr) < 2 {
		return nil, fmt.Errorf("accept event %s: unexpected reply %v", a.EventID, v)
	}
	acc := &linkflow.Accepted{Delivery: parseDelivery(a.OrgID, a.EventID, pairsToMap(arr[1])), Created: arr[0] == "created"}
	if len(arr) > 2 {
		acc.Event = parseEventRecord(a.EventID, arr[2])
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
