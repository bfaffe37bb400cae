package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
func (s *Store) ListLinks(ctx context.Context, org string, f linkflow.LinkFilter, cursor string, limit int) (links []*linkflow.Link, next string, err error) {
	if cursor != "" && (!strings.HasPrefix(cursor, "link_") || !validID(cursor)) {
		return nil, "", linkflow.ErrBadCursor
	}
	index := linksIndexKey(org)
	switch {
	case f.ExternalUserID != "":
		index = linksByUserKey(org, f.ExternalUserID)
	case f.IntegrationID != "":
		index = linksByIntegrationKey(org, f.IntegrationID)
	}
	now := s.now()
	max := "+"
	if cursor != "" {
		max = "(" + cursor
	}
	scanned := 0
	var gone []string
	defer func() {
		if len(gone) > 0 {
			s.rdb.ZRem(context.WithoutCancel(ctx), index, toAny(gone)...)
		}
	}()
	for len(links) < limit && scanned < maxScan {
		batch := int64(max2(limit-len(links), 50))
		ids, err := s.rdb.ZRevRangeByLex(ctx, index, &redis.ZRangeBy{Min: "-", Max: max, Count: batch}).Result()
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
			cmds[i] = pipe.HGetAll(ctx, linkKey(org, id))
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, "", err
		}
		for i, c := range cmds {
			max = "(" + ids[i]
			l, err := s.linkFromHash(c.Val())
			if errors.Is(err, linkflow.ErrNotFound) {
				// Gone with its retention: the index forgets it too.
				gone = append(gone, ids[i])
				continue
			}
			if err != nil {
				continue
			}
			if f.Status != "" && l.EffectiveStatus(now) != f.Status {
				continue
			}
			if f.IntegrationID != "" && l.IntegrationID != f.IntegrationID {
				continue
			}
			links = append(links, l)
			if len(links) == limit {
				next = ids[i]
				break
			}
		}
		if int64(len(ids)) < batch && len(links) < limit {
			return links, "", nil
		}
	}
	// The scan stopped at maxScan with a short (maybe empty) page: the
	// cursor lets the caller go on from where it stopped.
	if next == "" && max != "+" {
		next = strings.TrimPrefix(max, "(")
	}
	return links, next, nil
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

// pruneLinkIndexes removes from an organization's link indexes (every link,
// by integration, by user) the entries of links whose retention ended by
// now, up to limit of them, and reports how many, so the indexes do not
// outgrow the links they list.
func (s *Store) pruneLinkIndexes(ctx context.Context, org string, limit int) (int, error) {
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: linksRetentionKey(org), Start: "-inf",
		Stop: strconv.FormatInt(ms(s.now()), 10), ByScore: true, Count: int64(limit)}).Result()
	if err != nil || len(members) == 0 {
		return 0, err
	}
	pipe := s.rdb.TxPipeline()
	for _, m := range members {
		parts := strings.SplitN(m, "\x00", 3)
		if len(parts) == 3 {
			pipe.ZRem(ctx, linksIndexKey(org), parts[0])
			pipe.ZRem(ctx, linksByIntegrationKey(org, parts[1]), parts[0])
			if parts[2] != "" {
				pipe.ZRem(ctx, linksByUserKey(org, parts[2]), parts[0])
			}
		}
		pipe.ZRem(ctx, linksRetentionKey(org), m)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("prune link indexes of %s: %w", org, err)
	}
	return len(members), nil
}
