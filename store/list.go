package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
)

// maxScan bounds how many index entries one page may look at when filtering
// by status, so a rare status cannot make one request scan everything; the
// page then comes back short with a cursor to go on.
const maxScan = 2000

// ListLinks returns an organization's links, newest first, after cursor (the
// last link id of the previous page; "" for the first page). Ids sort by
// creation time, so pages stay stable while links are being created: new
// links appear before the first page, never inside later ones. next is ""
// when there is nothing more.
//
// The organization's index has one part per shard; a page takes the newest
// ids of every part and merges them (mergeNewest).
func (s *Store) ListLinks(ctx context.Context, org string, f linkflow.LinkFilter, cursor string, limit int) (links []*linkflow.Link, next string, err error) {
	if cursor != "" && (!strings.HasPrefix(cursor, "link_") || !validID(cursor)) {
		return nil, "", linkflow.ErrBadCursor
	}
	index := func(sh int) string { return s.k.linksIndex(sh, org) }
	switch {
	case f.ExternalUserID != "":
		index = func(sh int) string { return s.k.linksByUser(sh, org, f.ExternalUserID) }
	case f.IntegrationID != "":
		index = func(sh int) string { return s.k.linksByIntegration(sh, org, f.IntegrationID) }
	}
	now := s.now()
	after := cursor
	scanned := 0
	for len(links) < limit && scanned < maxScan {
		batch := max(limit-len(links), 50)
		ids, more, err := s.mergeNewest(ctx, index, after, batch)
		if err != nil {
			return nil, "", err
		}
		if len(ids) == 0 {
			return links, "", nil
		}
		scanned += len(ids)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, s.k.link(id))
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, "", err
		}
		for i, c := range cmds {
			after = ids[i]
			l, err := linkOf(c.Val())
			if errors.Is(err, linkflow.ErrNotFound) {
				// Gone with its retention: the index forgets it too.
				s.rdb.ZRem(context.WithoutCancel(ctx), index(shardOf(ids[i])), ids[i])
				continue
			}
			if err != nil || l.OrgID != org {
				continue
			}
			if f.Status != "" && l.EffectiveStatus(now) != f.Status {
				continue
			}
			if f.IntegrationID != "" && l.IntegrationID != f.IntegrationID {
				continue
			}
			// A claim code sealed with a key this process is not given (a
			// key roll under way) fails the page: asked again, a process
			// given the key answers it whole. A damaged one (the key is
			// there, the value does not open) is listed without its code.
			if f.ClaimCodes {
				if err := s.openClaimCode(l, c.Val()); errors.Is(err, linkflow.ErrUnknownKey) {
					return nil, "", err
				}
			}
			links = append(links, l)
			if len(links) == limit {
				if i < len(ids)-1 || more {
					next = ids[i]
				}
				return links, next, nil
			}
		}
		if !more {
			return links, "", nil
		}
	}
	// The scan stopped at maxScan with a short (maybe empty) page: the
	// cursor lets the caller go on from where it stopped.
	return links, after, nil
}

// mergeNewest returns the n greatest members below after ("" for no bound)
// of the lexically sorted sets index(0) ... index(Shards-1) taken together,
// greatest first, and whether more follow. Each part gives at most n
// members, in one pipeline.
func (s *Store) mergeNewest(ctx context.Context, index func(shard int) string, after string, n int) ([]string, bool, error) {
	hi := "+"
	if after != "" {
		hi = "(" + after
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, Shards)
	for sh := range Shards {
		cmds[sh] = pipe.ZRevRangeByLex(ctx, index(sh), &redis.ZRangeBy{Min: "-", Max: hi, Count: int64(n + 1)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, err
	}
	var all []string
	for _, c := range cmds {
		all = append(all, c.Val()...)
	}
	slices.SortFunc(all, func(a, b string) int { return strings.Compare(b, a) })
	if len(all) > n {
		return all[:n], true, nil
	}
	return all, false, nil
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// pruneLink queues in pipe the removal of the link that retention schedule
// member m (of shard sh) names from its organization's link indexes (every
// link, by integration, by user), and of m, if m is still due at now
// (prune_link.lua), so the indexes do not outgrow the links they list. Its
// reply is 1 when it pruned.
func (s *Store) pruneLink(ctx context.Context, pipe *scriptPipe, sh int, m string, now time.Time) *redis.Cmd {
	keys := []string{s.k.retention(sh)}
	id, org, integ, user, ok := parseRetentionMember(m)
	if ok {
		keys = append(keys, s.k.linksIndex(sh, org), s.k.linksByIntegration(sh, org, integ))
		if user != "" {
			keys = append(keys, s.k.linksByUser(sh, org, user))
		}
	}
	return pipe.Script(ctx, pruneLinkScript, keys, m, ms(now), id)
}
