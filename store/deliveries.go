package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
)

// Webhook delivery state. Each event has one delivery state hash in its
// shard (keyspace.delivery), the attempts of a link's event are logged in a
// capped list next to the link (keyspace.linkDeliveries), deliveries that
// exhausted their schedule are indexed by time per organization and shard
// (keyspace.failedDeliveries), and every pending retry waits in its event's
// shard's retry schedule (keyspace.retrySchedule, member "org|eventId",
// score = due time in ms).
//
// Writing the state and the schedule are two steps, which the dispatcher
// pipelines (delivery_dispatch.go) and which must be safe in either order
// and when one of them fails: a schedule entry whose state says otherwise is
// corrected by whoever claims it next, and a dispatcher moves an entry only
// while it holds its claim, so a redelivery's move is never undone.

var (
	deliveryRecordScript     = script("delivery_record")
	deliveryResendScript     = script("delivery_resend")
	deliveryClaimScript      = script("delivery_claim")
	deliveryFailedPageScript = script("delivery_failed_page")
)

func parseDelivery(org, eventID string, m map[string]string) *linkflow.Delivery {
	return &linkflow.Delivery{
		OrgID: org, EventID: eventID, EventType: m["type"], LinkID: m["link"],
		URL: m["url"], Status: m["status"], Attempts: int(atoi(m["attempts"])), Step: int(atoi(m["step"])),
		Version: atoi(m["version"]), Trigger: m["trigger"], Once: m["once"] == "1", OnceFrom: m["onceFrom"],
		NextAt: linkflow.FromMillis(atoi(m["nextAt"])), CreatedAt: linkflow.FromMillis(atoi(m["createdAt"])),
		LastAttemptAt: linkflow.FromMillis(atoi(m["lastAt"])), LastStatusCode: int(atoi(m["lastCode"])),
		LastError: m["lastError"], DeliveredAt: linkflow.FromMillis(atoi(m["deliveredAt"])),
		FailedAt: linkflow.FromMillis(atoi(m["failedAt"])),
	}
}

// deliveryTTL is how long delivery state and attempt logs are kept after
// their last change: the link retention, or longer when failed deliveries
// must stay replayable longer.
func (s *Store) deliveryTTL(failedRetention time.Duration) time.Duration {
	return max(s.cfg.Retention, failedRetention)
}

func parseDeliveryRef(m string) (linkflow.DeliveryRef, bool) {
	i := strings.LastIndexByte(m, '|')
	if i <= 0 || i == len(m)-1 {
		return linkflow.DeliveryRef{}, false
	}
	return linkflow.DeliveryRef{OrgID: m[:i], EventID: m[i+1:]}, true
}

// ClaimDueDeliveries claims up to limit deliveries due at now for the
// caller, hiding them from other claimers for visibility: a caller that
// dies holding them lets them come back then. It also returns when the
// earliest remaining entry is due (zero when the schedule is empty).
//
// The schedule has one part per shard: one pipeline counts what is due in
// each, and a second claims, from the parts that have some, up to limit in
// all, starting from a random part so that none waits behind the others.
func (s *Store) ClaimDueDeliveries(ctx context.Context, now time.Time, limit int, visibility time.Duration) ([]linkflow.DeliveryRef, time.Time, error) {
	nowMs := strconv.FormatInt(ms(now), 10)
	pipe := s.rdb.Pipeline()
	counts := make([]*redis.IntCmd, Shards)
	firsts := make([]*redis.ZSliceCmd, Shards)
	for sh := range Shards {
		counts[sh] = pipe.ZCount(ctx, s.k.retrySchedule(sh), "-inf", nowMs)
		firsts[sh] = pipe.ZRangeWithScores(ctx, s.k.retrySchedule(sh), 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, time.Time{}, fmt.Errorf("claim due deliveries: %w", err)
	}
	var next time.Time
	consider := func(score float64) {
		if t := time.UnixMilli(int64(score)); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	claims := s.pipeline()
	var cmds []*redis.Cmd
	var claimed []int
	left := limit
	start := randomShard()
	for i := range Shards {
		sh := (start + i) % Shards
		n := int(counts[sh].Val())
		if n == 0 || left == 0 {
			if f := firsts[sh].Val(); len(f) > 0 {
				consider(f[0].Score)
			}
			continue
		}
		take := min(n, left)
		left -= take
		cmds = append(cmds, claims.Script(ctx, deliveryClaimScript, []string{s.k.retrySchedule(sh)},
			ms(now), take, ms(now.Add(visibility))))
		claimed = append(claimed, sh)
	}
	if len(cmds) == 0 {
		return nil, next, nil
	}
	if err := claims.Exec(ctx); err != nil {
		return nil, time.Time{}, fmt.Errorf("claim due deliveries: %w", err)
	}
	var refs []linkflow.DeliveryRef
	for i, c := range cmds {
		arr, ok := c.Val().([]any)
		if !ok || len(arr) != 2 {
			continue
		}
		members, _ := replyStrings(arr[0])
		var bad []any
		for _, m := range members {
			if r, ok := parseDeliveryRef(m); ok {
				refs = append(refs, r)
			} else {
				bad = append(bad, m)
			}
		}
		if len(bad) > 0 {
			_ = s.rdb.ZRem(ctx, s.k.retrySchedule(claimed[i]), bad...).Err()
		}
		if str, _ := arr[1].(string); str != "" {
			f, _ := strconv.ParseFloat(str, 64)
			consider(f)
		}
	}
	return refs, next, nil
}

// RecordAttempt logs an attempt and applies its decision in one step, which
// with a linkflow.Claim also settles the delivery's retry schedule entry. It
// returns the attempt's number, and linkflow.ErrFenced (with the number)
// when the state changed since the attempt began, in which case the attempt
// is logged as superseded and the decision dropped.
func (s *Store) RecordAttempt(ctx context.Context, a linkflow.AttemptRecord) (int, error) {
	tail, ok := strings.CutPrefix(string(a.Entry), linkflow.AttemptEntryPrefix)
	if !ok {
		return 0, fmt.Errorf("record attempt: entry must begin with %s", linkflow.AttemptEntryPrefix)
	}
	if a.LogCap <= 0 {
		a.LogCap = 100
	}
	// A link's attempts are logged with the link, any other event's (a
	// connection's) with its delivery.
	writeLog, linkLog := "1", s.k.linkDeliveries(a.LinkID)
	if a.LinkID == "" {
		linkLog = s.k.deliveryLog(a.EventID)
	}
	delivered := ""
	if a.Delivered {
		delivered = "ok"
	}
	keys := []string{s.k.delivery(a.EventID), linkLog, s.k.failedDeliveries(shardOf(a.EventID), a.OrgID),
		s.k.retrySchedule(shardOf(a.EventID))}
	ref := linkflow.DeliveryRef{OrgID: a.OrgID, EventID: a.EventID}
	settle := []any{"", "", "", ""}
	if !a.Claim.IsZero() {
		next := a.NextAt
		if a.Status != linkflow.DeliveryPending {
			next = time.Time{}
		}
		settle = settleArgs(ref, a.Claim, a.Now, next)
	}
	args := append([]any{a.Version, ms(a.At), tail, a.LogCap, s.deliveryTTL(a.FailedRetention).Milliseconds(), writeLog,
		a.Status, a.Step, ms(a.NextAt), a.Trigger, delivered, a.StatusCode, a.Error, a.EventID,
		ms(a.At.Add(-a.FailedRetention))}, settle...)
	n, err := parseRecorded(a, deliveryRecordScript.Run(ctx, s.rdb, keys, args...))
	if err != nil && !a.Claim.IsZero() && !errors.Is(err, linkflow.ErrFenced) && !errors.Is(err, linkflow.ErrNotFound) {
		// No answer: the step may have settled the entry without the
		// attempt being known to be recorded. Put the claim back (unless
		// the entry is there), so that the delivery comes back when it
		// expires and is looked at again.
		ctx, cancel := repairContext(ctx)
		defer cancel()
		_ = s.rdb.ZAddNX(ctx, s.k.retrySchedule(shardOf(ref.EventID)), redis.Z{Score: float64(ms(a.Claim)), Member: refMember(ref)}).Err()
	}
	return n, err
}

func parseRecorded(a linkflow.AttemptRecord, cmd *redis.Cmd) (int, error) {
	res, err := cmd.Result()
	if err != nil {
		return 0, fmt.Errorf("record attempt of %s: %w", a.EventID, err)
	}
	out, err := replyStrings(res)
	if err != nil {
		return 0, err
	}
	switch out[0] {
	case "ok":
		return int(atoi(out[1])), nil
	case "fenced":
		return int(atoi(out[1])), linkflow.ErrFenced
	case "missing":
		return 0, linkflow.ErrNotFound
	}
	return 0, fmt.Errorf("record attempt of %s: unexpected reply %q", a.EventID, out[0])
}

// ResendDelivery asks for one more attempt of a delivery at now (see
// delivery_resend.lua) and puts it first in the retry schedule, in one step. With
// onlyFailed, a delivery that is not failed is left alone (linkflow.ErrNotFailed).
// It returns linkflow.ErrNotFound without state and linkflow.ErrNoTarget without a URL.
func (s *Store) ResendDelivery(ctx context.Context, org, eventID, trigger string, onlyFailed bool, now time.Time, failedRetention time.Duration) (*linkflow.Delivery, error) {
	if !validID(org) || !validID(eventID) {
		return nil, linkflow.ErrNotFound
	}
	only := "0"
	if onlyFailed {
		only = "1"
	}
	ref := linkflow.DeliveryRef{OrgID: org, EventID: eventID}
	res, err := deliveryResendScript.Run(ctx, s.rdb,
		[]string{s.k.delivery(eventID), s.k.failedDeliveries(shardOf(eventID), org), s.k.retrySchedule(shardOf(eventID))},
		trigger, ms(now), s.deliveryTTL(failedRetention).Milliseconds(), eventID, only, org, refMember(ref)).Result()
	if err != nil {
		return nil, fmt.Errorf("resend delivery %s: %w", eventID, err)
	}
	arr, ok := res.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("resend delivery %s: unexpected reply %v", eventID, res)
	}
	switch arr[0] {
	case "missing":
		return nil, linkflow.ErrNotFound
	case "no_target":
		return nil, linkflow.ErrNoTarget
	case "skipped":
		return nil, linkflow.ErrNotFailed
	case "ok":
	default:
		return nil, fmt.Errorf("resend delivery %s: unexpected reply %v", eventID, arr[0])
	}
	return parseDelivery(org, eventID, pairsToMap(arr[1])), nil
}

// EventAttempts returns the attempt log of an event that is not a link's
// (a connection's), oldest first; linkflow.ErrNotFound when the
// organization has no delivery of it (none yet, or it expired).
func (s *Store) EventAttempts(ctx context.Context, org, eventID string) ([]json.RawMessage, error) {
	if !validID(org) || !validID(eventID) {
		return nil, linkflow.ErrNotFound
	}
	return s.attemptLog(ctx, org, s.k.delivery(eventID), s.k.deliveryLog(eventID))
}

// DeliveryAttempts returns the attempt log of a link's event, oldest first.
func (s *Store) DeliveryAttempts(ctx context.Context, org, linkID string) ([]json.RawMessage, error) {
	if !validID(org) || !validID(linkID) {
		return nil, linkflow.ErrNotFound
	}
	return s.attemptLog(ctx, org, s.k.link(linkID), s.k.linkDeliveries(linkID))
}

// attemptLog reads the attempt log at logKey when the record at ownerKey
// (a link, or a delivery) is org's, in one round trip.
func (s *Store) attemptLog(ctx context.Context, org, ownerKey, logKey string) ([]json.RawMessage, error) {
	pipe := s.rdb.Pipeline()
	owner := pipe.HGet(ctx, ownerKey, "org") // fOrg, in both records
	log := pipe.LRange(ctx, logKey, 0, -1)
	_, _ = pipe.Exec(ctx) // each command's own error below: a missing owner (redis.Nil) comes first
	if err := owner.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	if owner.Val() != org {
		return nil, linkflow.ErrNotFound
	}
	if err := log.Err(); err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(log.Val()))
	for i, it := range log.Val() {
		out[i] = json.RawMessage(it)
	}
	return out, nil
}

// FailedDeliveries returns a page of an organization's failed deliveries,
// oldest first, failed at or after since and, unless until is zero, at or
// before until, and the cursor of the next page ("" at the end). The
// failed set has one part per shard: each part gives its page after the
// cursor (delivery_failed_page.lua), and the pages merge by (failed at,
// event id).
func (s *Store) FailedDeliveries(ctx context.Context, org, cursor string, limit int, since, until time.Time) ([]*linkflow.Delivery, string, error) {
	if !validID(org) {
		return nil, "", nil
	}
	curScore, curMember := "", ""
	if cursor != "" {
		sc, m, ok := strings.Cut(cursor, "|")
		if _, err := strconv.ParseInt(sc, 10, 64); !ok || err != nil || !validID(m) {
			return nil, "", fmt.Errorf("%w: bad failed-deliveries cursor", linkflow.ErrBadCursor)
		}
		curScore, curMember = sc, m
	}
	upper := "+inf"
	if !until.IsZero() {
		upper = strconv.FormatInt(ms(until), 10)
	}
	pipe := s.pipeline()
	pages := make([]*redis.Cmd, Shards)
	for sh := range Shards {
		// One more than the page: whether anything follows is then known.
		pages[sh] = pipe.Script(ctx, deliveryFailedPageScript, []string{s.k.failedDeliveries(sh, org)},
			curScore, curMember, limit+1, ms(since), upper)
	}
	if err := pipe.Exec(ctx); err != nil {
		return nil, "", fmt.Errorf("failed deliveries: %w", err)
	}
	type entry struct {
		id    string
		score int64
	}
	var entries []entry
	for _, p := range pages {
		flat, _ := replyStrings(p.Val())
		for i := 0; i+1 < len(flat); i += 2 {
			f, _ := strconv.ParseFloat(flat[i+1], 64)
			entries = append(entries, entry{flat[i], int64(f)})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	more := len(entries) > limit
	entries = entries[:min(len(entries), limit)]
	rp := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(entries))
	for i, e := range entries {
		cmds[i] = rp.HGetAll(ctx, s.k.delivery(e.id))
	}
	if len(entries) > 0 {
		if _, err := rp.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", err
		}
	}
	out := make([]*linkflow.Delivery, 0, len(entries))
	for i, e := range entries {
		m := cmds[i].Val()
		if len(m) == 0 {
			_ = s.rdb.ZRem(ctx, s.k.failedDeliveries(shardOf(e.id), org), e.id).Err()
			continue
		}
		out = append(out, parseDelivery(org, e.id, m))
	}
	next := ""
	if more && len(entries) > 0 {
		last := entries[len(entries)-1]
		next = strconv.FormatInt(last.score, 10) + "|" + last.id
	}
	return out, next, nil
}

// ScheduledAt returns when a delivery is due in the retry schedule (while
// a dispatcher attempts it, when its claim ends), or linkflow.ErrNotFound
// when it is not there.
func (s *Store) ScheduledAt(ctx context.Context, ref linkflow.DeliveryRef) (time.Time, error) {
	f, err := s.rdb.ZScore(ctx, s.k.retrySchedule(shardOf(ref.EventID)), refMember(ref)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, linkflow.ErrNotFound
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(f)), nil
}

// refMember is a delivery's member in the retry schedule.
func refMember(r linkflow.DeliveryRef) string { return r.OrgID + "|" + r.EventID }
