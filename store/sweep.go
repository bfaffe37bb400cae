package store

import (
	"context"
	"errors"
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

// SweepLinks does one round of link upkeep in every shard, up to limit
// links of each kind per shard: pending links whose expiry passed end as
// expired, with a link.expired event each (returned, to publish); claimed
// links whose deadline passed OverdueGrace ago and that no session holds
// fail (LINK_EXPIRED, with a link.failed event each); and the link indexes
// lose the entries of links whose retention ended.
func (s *Store) SweepLinks(ctx context.Context, limit int) (*linkflow.Sweep, error) {
	sw := &linkflow.Sweep{Unreadable: map[string]error{}}
	var err error
	if sw.Expired, err = s.expireDue(ctx, limit, sw.Unreadable); err != nil {
		return sw, err
	}
	if sw.Overdue, err = s.failOverdue(ctx, limit, sw.Unreadable); err != nil {
		return sw, err
	}
	sw.Pruned, err = s.pruneLinkIndexes(ctx, limit)
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

// sweepDue goes through the links due in a schedule (key's parts, scores up
// to max, up to limit per shard). A link that is gone, does not decode (into
// unreadable: the next round would stop at it again, before every link due
// after it) or for which due says false leaves the schedule; otherwise
// change says whether to end it as it changed it, under the version it was
// read at (a link that changed meanwhile is left for the next round). A
// Redis error ends the round. It returns the links it ended.
func (s *Store) sweepDue(ctx context.Context, key func(shard int) string, max time.Time, limit int,
	unreadable map[string]error, due func(*linkflow.Link) bool,
	change func(*linkflow.Link) (bool, error)) ([]*linkflow.Finished, error) {
	ids, err := s.dueIn(ctx, key, max, limit)
	if err != nil {
		return nil, err
	}
	var n []*linkflow.Finished
	for sh, ids := range ids {
		for _, id := range ids {
			// Not loadLink: a Redis error ends the round, a link that does
			// not decode leaves the schedule.
			m, err := s.rdb.HGetAll(ctx, s.k.link(id)).Result()
			if err != nil {
				return n, err
			}
			l, lerr := s.linkFromHash(m)
			if lerr != nil || !due(l) {
				if err := s.rdb.ZRem(ctx, key(sh), id).Err(); err != nil {
					return n, err
				}
				if lerr != nil && !errors.Is(lerr, linkflow.ErrNotFound) {
					unreadable[id] = lerr
				}
				continue
			}
			end, err := change(l)
			if err != nil {
				return n, err
			}
			if !end {
				continue
			}
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
	return n, nil
}

// expireDue ends the pending links whose expiry has passed.
func (s *Store) expireDue(ctx context.Context, limit int, unreadable map[string]error) ([]*linkflow.Finished, error) {
	now := s.now()
	return s.sweepDue(ctx, s.k.expiring, now, limit, unreadable, func(l *linkflow.Link) bool {
		return l.Status == linkflow.StatusPending && l.EffectiveStatus(now) == linkflow.StatusExpired
	}, func(l *linkflow.Link) (bool, error) {
		l.Status = linkflow.StatusExpired
		l.CompletedAt = l.ExpiresAt
		l.ClaimCode = ""
		return true, nil
	})
}

// failOverdue fails the claimed links whose deadline passed OverdueGrace ago
// and that no session holds. No session can end them any more: one that
// begins now fails them at once (LINK_EXPIRED), and one that ran stopped at
// the deadline. They are links whose message was lost or acknowledged
// without a recorded outcome (a Redis failover that lost a confirmed
// commit, a dead letter whose link could not be failed), or that no worker
// serves. A link a session still holds is looked at again after the grace.
func (s *Store) failOverdue(ctx context.Context, limit int, unreadable map[string]error) ([]*linkflow.Finished, error) {
	now := s.now()
	return s.sweepDue(ctx, s.k.deadlines, now.Add(-OverdueGrace), limit, unreadable, func(l *linkflow.Link) bool {
		return !l.EffectiveStatus(now).Terminal()
	}, func(l *linkflow.Link) (bool, error) {
		held, err := s.failUnheld(ctx, l, linkflow.LinkError{Code: linkflow.FailureLinkExpired,
			Message: "The link's deadline passed and no session recorded its outcome."})
		if err != nil || !held {
			return err == nil, err
		}
		return false, s.rdb.ZAddXX(ctx, s.k.deadlines(shardOf(l.ID)), redis.Z{Score: float64(ms(now)), Member: l.ID}).Err()
	})
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
	l.ClaimCode = ""
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
