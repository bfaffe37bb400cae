package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/linkflow/linkflow"
)

// AppendTrace adds entries to the trace of debug link id (it expires at
// expiresAt), keeping the last linkflow.MaxTraceEntries, as long as the link
// can live; once the link finished (a finish entry, or the finishing step
// itself) the trace stays as long as the link is retained.
func (s *Store) AppendTrace(ctx context.Context, id string, expiresAt time.Time, entries ...linkflow.TraceEntry) error {
	if len(entries) == 0 || !validID(id) {
		return nil
	}
	ttl := s.cfg.Retention + max(expiresAt.Sub(s.now()), s.cfg.MinSessionTime)
	for _, e := range entries {
		if e.Step == linkflow.TraceFinish {
			ttl = s.cfg.Retention // the link ended: it and its trace stay as long
		}
	}
	args := []any{linkflow.MaxTraceEntries, ttl.Milliseconds()}
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		args = append(args, string(b))
	}
	if err := traceAppendScript.Run(ctx, s.rdb, []string{s.k.linkTrace(id)}, args...).Err(); err != nil {
		return fmt.Errorf("append to the trace of %s: %w", id, err)
	}
	return nil
}

// Trace returns the trace of an organization's link, oldest step first,
// with the link. Another organization's link is linkflow.ErrNotFound.
func (s *Store) Trace(ctx context.Context, org, id string) (*linkflow.Link, []linkflow.TraceEntry, error) {
	l, err := s.Link(ctx, org, id)
	if err != nil {
		return nil, nil, err
	}
	raw, err := s.rdb.LRange(ctx, s.k.linkTrace(id), 0, -1).Result()
	if err != nil {
		return nil, nil, err
	}
	out := make([]linkflow.TraceEntry, 0, len(raw))
	for _, r := range raw {
		var e linkflow.TraceEntry
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			return nil, nil, fmt.Errorf("trace of %s: %w", id, err)
		}
		out = append(out, e)
	}
	return l, out, nil
}
