package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
)

// The outbox of a shard is two keys in it: a sorted set of message ids by
// the time they are due for publishing (again), and a hash of the messages
// by id. A script that changes state records its message in both, in the
// same step; the message itself is built in Go (package outbox) and handed
// to the script encoded (encodeMessage). A message's Outbox names its shard.

// encodeMessage is a message as the outbox keeps it: the subject, a newline
// (which a subject cannot contain), the payload.
func encodeMessage(m linkflow.Message) string { return m.Subject + "\n" + string(m.Data) }

func decodeMessage(shard int, id, v string) (linkflow.Message, bool) {
	subject, data, ok := strings.Cut(v, "\n")
	if !ok || subject == "" {
		return linkflow.Message{}, false
	}
	return linkflow.Message{Subject: subject, ID: id, Data: []byte(data), Outbox: outboxName(shard)}, true
}

// DueOutbox returns messages recorded at least age ago and not confirmed, of
// every shard, up to limit, and pushes them back by age, so that concurrent
// relays do not all publish the same ones. The event of a link whose
// connection is not written yet (the process that ended it stopped
// between the two steps) has its connection written first; one that cannot
// be written yet stays for the next round, and why is the error returned
// with the others (a Redis failure, or an intent that does not decode,
// which only a corrupted Redis holds and which would otherwise wait in
// silence forever).
func (s *Store) DueOutbox(ctx context.Context, age time.Duration, limit int) ([]linkflow.Message, error) {
	now := s.now()
	due, err := s.dueIn(ctx, s.k.outbox, now.Add(-age), limit)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	type batch struct {
		shard int
		ids   []string
		push  *redis.IntCmd
		vals  *redis.SliceCmd
	}
	var batches []batch
	taken := 0
	for sh, ids := range due {
		if len(ids) == 0 || taken >= limit {
			continue
		}
		ids = ids[:min(len(ids), limit-taken)]
		taken += len(ids)
		zs := make([]redis.Z, len(ids))
		for i, id := range ids {
			zs[i] = redis.Z{Score: float64(ms(now)), Member: id}
		}
		push := pipe.ZAddXX(ctx, s.k.outbox(sh), zs...)
		batches = append(batches, batch{shard: sh, ids: ids, push: push, vals: pipe.HMGet(ctx, s.k.outboxMessages(sh), ids...)})
	}
	if len(batches) == 0 {
		return nil, nil
	}
	// Exec's error is the first failed command's: each read's own decides.
	// The push-back is best effort: a full Redis (maxmemory, noeviction)
	// refuses it, and the relay must still publish what waits, whose
	// confirmations free memory; a message two relays publish is kept once
	// (JetStream's duplicate window).
	_, _ = pipe.Exec(ctx)
	var out []linkflow.Message
	var orphans []linkflow.Message
	var unread []error
	for _, b := range batches {
		if err := b.vals.Err(); err != nil {
			unread = append(unread, fmt.Errorf("due outbox: %w", err))
			continue
		}
		if err := b.push.Err(); err != nil && !redis.HasErrorPrefix(err, "OOM ") {
			unread = append(unread, fmt.Errorf("due outbox: push back: %w", err))
		}
		for i, v := range b.vals.Val() {
			str, _ := v.(string)
			m, ok := decodeMessage(b.shard, b.ids[i], str)
			if !ok {
				orphans = append(orphans, linkflow.Message{ID: b.ids[i], Outbox: outboxName(b.shard)})
				continue
			}
			m.Relayed = true
			out = append(out, m)
		}
	}
	if len(orphans) > 0 {
		_ = s.AckOutbox(ctx, orphans...)
	}
	out, err = s.settleIntents(ctx, out)
	return out, errors.Join(append(unread, err)...)
}

// settleIntents writes the pending connections of the links whose events
// are in msgs, and records the connection.healthy event of each connection
// one of those links repaired (announceRepair), and leaves out the events
// whose connection cannot be written or announced now, saying why in the
// error. The connection events it records are added to the messages.
func (s *Store) settleIntents(ctx context.Context, msgs []linkflow.Message) ([]linkflow.Message, error) {
	pipe := s.rdb.Pipeline()
	reads := make([]*redis.SliceCmd, len(msgs))
	for i, m := range msgs {
		if link, ok := linkOfEvent(m.ID); ok {
			reads[i] = pipe.HMGet(ctx, s.k.link(link), fConnIntent, fConnectionID)
		}
	}
	// Exec's error is the first command's that failed: each read's own
	// error decides.
	_, _ = pipe.Exec(ctx)
	out := msgs[:0]
	var left []error
	var announce []int // of out: link events whose connection to check
	var conns []string
	for i, m := range msgs {
		c := reads[i]
		if c != nil && c.Err() != nil {
			left = append(left, fmt.Errorf("event %s waits: read its link's connection write: %w", m.ID, c.Err()))
			continue
		}
		if c != nil {
			link, _ := linkOfEvent(m.ID)
			v := c.Val()
			intent, _ := v[0].(string)
			connID, _ := v[1].(string)
			if intent != "" {
				if _, err := s.applyStoredIntent(ctx, link, intent); err != nil {
					left = append(left, fmt.Errorf("event %s waits: %w", m.ID, err))
					continue
				}
			}
			if connID != "" {
				announce, conns = append(announce, len(out)), append(conns, connID)
			}
		}
		out = append(out, m)
	}
	if len(announce) == 0 {
		return out, errors.Join(left...)
	}
	// Which of those connections a link repaired and did not announce yet.
	pipe = s.rdb.Pipeline()
	by := make([]*redis.StringCmd, len(announce))
	for j, c := range conns {
		by[j] = pipe.HGet(ctx, s.k.conn(c), fRepairedBy)
	}
	_, _ = pipe.Exec(ctx)
	held := make([]bool, len(out))
	var events []linkflow.Message
	for j, i := range announce {
		m := out[i]
		link, _ := linkOfEvent(m.ID)
		if err := by[j].Err(); err != nil && !errors.Is(err, redis.Nil) {
			left, held[i] = append(left, fmt.Errorf("event %s waits: read its connection: %w", m.ID, err)), true
			continue
		}
		if by[j].Val() != link {
			continue
		}
		ev, err := s.announceRepair(ctx, link, conns[j])
		if err != nil {
			left, held[i] = append(left, fmt.Errorf("event %s waits: %w", m.ID, err)), true
			continue
		}
		if ev != nil {
			ev.Relayed = true
			events = append(events, *ev)
		}
	}
	kept := out[:0]
	for i, m := range out {
		if !held[i] {
			kept = append(kept, m)
		}
	}
	return append(kept, events...), errors.Join(left...)
}

// linkOfEvent is the link a link event's id names (LinkEventID).
func linkOfEvent(eventID string) (string, bool) {
	rest, ok := strings.CutPrefix(eventID, "evt_")
	if !ok {
		return "", false
	}
	return "link_" + rest, true
}

var recordSeqScript = script("record_seq")

// AckOutbox forgets messages JetStream confirmed, in one round trip. For an
// event the relay published again, it records in the event's record the
// sequence JetStream has it at (its first, within the duplicate window), so
// the event feed leaves out any other copy; a message published once needs
// no record.
func (s *Store) AckOutbox(ctx context.Context, msgs ...linkflow.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	pipe := s.pipeline()
	for _, m := range msgs {
		sh, ok := outboxShard(m.Outbox)
		if !ok {
			continue
		}
		pipe.ZRem(ctx, s.k.outbox(sh), m.ID)
		pipe.HDel(ctx, s.k.outboxMessages(sh), m.ID)
		if m.Relayed && m.Seq > 0 && strings.HasPrefix(m.ID, "evt_") {
			pipe.Script(ctx, recordSeqScript, []string{s.k.event(m.ID)}, m.Seq)
		}
	}
	return pipe.Exec(ctx)
}
