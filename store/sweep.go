package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/redis/go-redis/v9"
)

// Links that end without a worker: the sweeper expires pending links whose
// deadline passed, fails claimed links no session ended by their deadline,
// and prunes the indexes; a dead-lettered link fails.

// OverdueGrace is how long after its deadline a claimed link that no
// session holds is failed by the sweeper. A session stops at the deadline
// and records its failure within seconds; the grace covers that and the
// clocks of different machines.
const OverdueGrace = 5 * time.Minute

// SweepLinks does one round of link upkeep in every shard: up to limit
// pending links per shard whose expiry passed end as expired, with a
// link.expired event each (returned, to publish); and of up to limit links
// per shard due in the retention schedule, claimed links whose deadline
// passed OverdueGrace ago and that no session holds fail (LINK_EXPIRED,
// with a link.failed event each), and the link indexes lose the entries of
// links whose retention ended.
func (s *Store) SweepLinks(ctx context.Context, limit int) (*linkflow.Sweep, error) {
	sw := &linkflow.Sweep{Unreadable: map[string]error{}}
	var err error
	if sw.Expired, err = s.expireDue(ctx, limit, sw.Unreadable); err != nil {
		return sw, err
	}
	sw.Overdue, sw.Pruned, err = s.sweepRetention(ctx, limit, sw.Unreadable)
	return sw, err
}

// dueIn reads, from one sorted set per shard, up to limit members each whose
// score is at most max, in one pipeline.
func (s *Store) dueIn(ctx context.Context, key func(shard int) string, max time.Time, limit int) ([][]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, Shards)
	for sh := range Shards {
		cmds[sh] = pipe.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key(sh), Start: "-inf",
			Stop: strconv.FormatInt(ms(max), 10), ByScore: true, Count: int64(limit)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([][]string, Shards)
	for sh, c := range cmds {
		out[sh] = c.Val()
	}
	return out, nil
}

// expireDue ends the pending links whose expiry has passed, up to limit
// per shard, and returns them. A link that is gone, not pending, or does
// not decode (into unreadable: the next round would stop at it again,
// before every link due after it) leaves the expiry schedule; one that
// changed meanwhile is left for the next round. A Redis error ends the
// round.
func (s *Store) expireDue(ctx context.Context, limit int, unreadable map[string]error) ([]*linkflow.Finished, error) {
	now := s.now()
	due, err := s.dueIn(ctx, s.k.expiring, now, limit)
	if err != nil {
		return nil, err
	}
	// Every due link, in one pipeline (not loadLink: a Redis error ends
	// the round, a link that does not decode leaves the schedule).
	pipe := s.rdb.Pipeline()
	read := make([][]*redis.MapStringStringCmd, Shards)
	for sh, ids := range due {
		for _, id := range ids {
			read[sh] = append(read[sh], pipe.HGetAll(ctx, s.k.link(id)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var n []*linkflow.Finished
	leave := s.rdb.Pipeline()
	for sh, ids := range due {
		for i, id := range ids {
			l, lerr := linkOf(read[sh][i].Val())
			if lerr != nil || l.Status != linkflow.StatusPending || l.EffectiveStatus(now) != linkflow.StatusExpired {
				leave.ZRem(ctx, s.k.expiring(sh), id)
				if lerr != nil && !errors.Is(lerr, linkflow.ErrNotFound) {
					unreadable[id] = lerr
				}
				continue
			}
			l.Status = linkflow.StatusExpired
			l.CompletedAt = l.ExpiresAt
			fin, err := s.finish(ctx, l, fence{version: l.Version}, nil)
			if errors.Is(err, linkflow.ErrFenced) || errors.As(err, new(*linkflow.StateError)) {
				continue
			}
			if err != nil {
				return n, err
			}
			n = append(n, fin)
		}
	}
	if _, err := leave.Exec(ctx); err != nil {
		return n, err
	}
	return n, nil
}

// sweepRetention goes through the links due in the retention schedule, up
// to limit per shard. A link that is gone, ended or never claimed loses its
// index entries and its entry (pruned). A claimed link is there at its
// deadline plus OverdueGrace (its claim moved it, its end would have moved
// it to the end of its retention): no session can end it any more (one
// that begins now fails it at once, LINK_EXPIRED, and one that ran stopped
// at the deadline). It is a link whose message was lost or acknowledged
// without a recorded outcome (a Redis failover that lost a confirmed
// commit, a dead letter whose link could not be failed), or that no worker
// serves: it fails (overdue), unless a session still holds it, when it is
// looked at again a grace later.
func (s *Store) sweepRetention(ctx context.Context, limit int, unreadable map[string]error) (overdue []*linkflow.Finished, pruned int, err error) {
	now := s.now()
	due, err := s.dueIn(ctx, s.k.retention, now, limit)
	if err != nil {
		return nil, 0, err
	}
	s.atSweepStep("due")
	// Every due link, in one pipeline (mostly gone: their retention
	// ended; a gone link answers an empty hash, not redis.Nil, so Exec's
	// error is a real one).
	pipe := s.rdb.Pipeline()
	read := make([][]*redis.MapStringStringCmd, Shards)
	for sh, members := range due {
		for _, m := range members {
			read[sh] = append(read[sh], pipe.HGetAll(ctx, s.k.link(memberID(m))))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, err
	}
	prune := s.pipeline()
	var pruning []*redis.Cmd
	for sh, members := range due {
		for i, m := range members {
			if h := read[sh][i].Val(); s.claimedInRetention(h, now) {
				fin, open, err := s.failOverdue(ctx, sh, m, h, now, unreadable)
				if err != nil {
					return overdue, 0, err
				}
				if fin != nil {
					overdue = append(overdue, fin)
				}
				if open {
					continue
				}
			}
			pruning = append(pruning, s.pruneLink(ctx, prune, sh, m, now))
		}
	}
	if len(pruning) == 0 {
		return overdue, 0, nil
	}
	if err := prune.Exec(ctx); err != nil {
		return overdue, 0, fmt.Errorf("prune link indexes: %w", err)
	}
	for _, c := range pruning {
		if n, _ := c.Int(); n == 1 {
			pruned++
		}
	}
	return overdue, pruned, nil
}

// claimedInRetention says whether a link whose hash is h (empty when it is
// gone), with its retention entry due at now, is a
// claimed one the sweeper should fail: it has not ended, and its entry is
// the one its claim moved to its deadline plus OverdueGrace. A link an
// earlier release claimed is still at its entry's place from its creation,
// at least the retention past its deadline, and is pruned as it was.
func (s *Store) claimedInRetention(h map[string]string, now time.Time) bool {
	switch linkflow.Status(h[fStatus]) {
	case linkflow.StatusClaimed, linkflow.StatusRunning, linkflow.StatusAwaitingInput:
		return now.Before(time.UnixMilli(atoi(h[fExpiresAt])).Add(s.cfg.Retention))
	}
	return false
}

// failOverdue fails the claimed link (its hash h) whose retention schedule
// entry m came due, unless a session holds it (its entry then moves a grace later). It
// reports whether the entry stays (open: the link has not ended, or its end
// moved the entry); the entry of a link that is gone, or does not decode
// (reported unreadable, so the rounds do not stop at it), is pruned.
func (s *Store) failOverdue(ctx context.Context, sh int, m string, h map[string]string, now time.Time, unreadable map[string]error) (fin *linkflow.Finished, open bool, err error) {
	id := memberID(m)
	l, err := linkOf(h)
	if errors.Is(err, linkflow.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		unreadable[id] = err
		return nil, false, nil
	}
	held, err := s.failUnheld(ctx, l, linkflow.LinkError{Code: linkflow.FailureLinkExpired,
		Message: "The link's deadline passed and no session recorded its outcome."})
	if err != nil {
		return nil, true, err
	}
	if held {
		s.atSweepStep("held")
		// GT: not back from where the session's end just moved it.
		return nil, true, s.rdb.ZAddArgs(ctx, s.k.retention(sh), redis.ZAddArgs{XX: true, GT: true,
			Members: []redis.Z{{Score: float64(ms(now.Add(OverdueGrace))), Member: m}}}).Err()
	}
	fin, err = s.finish(ctx, l, fence{version: l.Version}, nil)
	if errors.Is(err, linkflow.ErrFenced) || errors.As(err, new(*linkflow.StateError)) {
		// It changed meanwhile: the next round reads it again.
		return nil, true, nil
	}
	return fin, true, err
}

func (s *Store) atSweepStep(step string) {
	if s.sweepStep != nil {
		s.sweepStep(step)
	}
}

// memberID is the link id a retention schedule member names.
func memberID(m string) string {
	id, _, _, _, _ := parseRetentionMember(m)
	return id
}

// failUnheld makes l failed with le, for finish, unless a session holds its
// lease (held).
func (s *Store) failUnheld(ctx context.Context, l *linkflow.Link, le linkflow.LinkError) (held bool, err error) {
	n, err := s.rdb.Exists(ctx, s.k.linkLease(l.ID)).Result()
	if err != nil || n > 0 {
		return n > 0, err
	}
	l.Status = linkflow.StatusFailed
	l.CompletedAt = time.UnixMilli(s.now().UnixMilli())
	l.Error = &le
	return false, nil
}

// FailLink fails a link that is not running under a live lease any more (its
// message was dead-lettered), unless it already finished. It returns nil
// Finished when there was nothing to do, and linkflow.ErrLeaseHeld while a
// session holds the link (that session ends it; a session that begins
// meanwhile changes the version, which fences this change).
func (s *Store) FailLink(ctx context.Context, org, id string, le linkflow.LinkError) (*linkflow.Finished, error) {
	for range 5 {
		l, err := s.Link(ctx, org, id)
		if err != nil {
			return nil, err
		}
		if l.EffectiveStatus(s.now()).Terminal() {
			return nil, nil
		}
		// A session that holds the link will end it itself (its commit
		// would be fenced by this one, and its provider writes orphaned).
		if held, err := s.failUnheld(ctx, l, le); err != nil {
			return nil, err
		} else if held {
			return nil, linkflow.ErrLeaseHeld
		}
		fin, err := s.finish(ctx, l, fence{version: l.Version}, nil)
		switch {
		case errors.Is(err, linkflow.ErrFenced):
			continue
		case errors.As(err, new(*linkflow.StateError)):
			return nil, nil // it ended meanwhile
		}
		return fin, err
	}
	return nil, linkflow.ErrFenced
}
