package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

// fence guards a write: by the worker's lease token, or else by the version
// of the link the caller read.
type fence struct {
	token   string
	version int64
}

func (f fence) args() (string, string) {
	if f.token != "" {
		return "lease", f.token
	}
	return "version", strconv.FormatInt(f.version, 10)
}

func credentialsAAD(connID string) string { return "conn:" + connID + ":credentials" }

// finish ends link l (already carrying its final status, completion time and
// result or error) in one atomic step in the link's shard, with its event
// and, when conn is given, the write of its connection. On a single Redis
// the same step writes the connection. On a Cluster the connection lives in
// its account's shard: the step records the write in the link (connIntent),
// and applyIntent makes it before the event may go out; until then, readers
// see the link still running.
func (s *Store) finish(ctx context.Context, l *linkflow.Link, f fence, conn *linkflow.ConnectionWrite) (*linkflow.Finished, error) {
	org, id := l.OrgID, l.ID
	shard := shardOf(id)
	now := s.now()
	var pending *connIntent
	if conn != nil {
		connID := conn.ID
		if connID == "" {
			connID = connectionID(org, conn.IntegrationID, conn.Username)
		}
		l.ConnectionID = connID
		var err error
		if pending, err = s.connectionWrite(org, connID, conn, now.UnixMilli(), id); err != nil {
			return nil, err
		}
	}
	inline := pending != nil && s.single && !s.deferApply
	ev, body, err := linkflow.NewLinkEvent(l.View("", now), ms(now))
	if err != nil {
		return nil, err
	}
	linkPairs := finalFields(l)
	if pending != nil && !inline {
		b, err := json.Marshal(pending)
		if err != nil {
			return nil, err
		}
		linkPairs = append(linkPairs, fConnIntent, string(b))
	}
	kind, val := f.args()
	keys := []string{
		s.k.link(id), s.k.linkLease(id), s.k.linkCred(id), s.k.linkInput(id),
		s.k.outbox(shard), s.k.outboxMessages(shard), s.k.expiring(shard), s.k.retention(shard),
		s.k.event(ev.ID), s.k.linkTrace(id),
	}
	head, tail := s.eventParts(body, l.Result)
	msg := outbox.EventMessage(org, ev.ID, ev.Type)
	argv := make([]any, 0, 13+len(linkPairs)+connArgs(pending))
	argv = append(argv, kind, val, ms(now), id, s.cfg.Retention.Milliseconds(),
		ev.ID, ev.Type, l.WebhookURL, head, tail, s.cfg.EventRetention.Milliseconds(),
		encodeMessage(msg), len(linkPairs)/2)
	argv = append(argv, linkPairs...)
	if inline {
		// On a single Redis the connection's write goes in the same step.
		ckeys, cargv := s.intentCall(id, pending)
		keys = append(keys, ckeys...)
		argv = append(argv, cargv...)
	}
	out, err := s.runStrings(ctx, finishLinkScript, "finish link "+id, keys, argv...)
	if err != nil {
		return nil, err
	}
	mine, stored, repaired := false, "", false
	switch out[0] {
	case "ok":
		repaired = len(out) > 1 && out[1] == connRepaired
	case "fenced":
		return nil, linkflow.ErrFenced
	case "done":
		if f.token != "" && len(out) > 3 && out[2] == "mine" {
			// This caller ended it and lost the reply. The connection's
			// write still waiting in the link (a Cluster) is the one to
			// apply: it carries the first commit's time, where this call's
			// would carry a later one, able to outrun a delete or a newer
			// link's write.
			mine, stored = true, out[3]
			break
		}
		if f.token != "" {
			return nil, linkflow.ErrFenced
		}
		return nil, &linkflow.StateError{Status: linkflow.Status(out[1])}
	default:
		return nil, fmt.Errorf("finish link %s: unexpected reply %q", id, out[0])
	}
	msg.Outbox = outboxName(shard)
	fin := &linkflow.Finished{OrgID: org, LinkID: id, EventID: ev.ID, EventType: ev.Type, ConnectionID: l.ConnectionID, Event: msg}
	switch {
	case mine && stored != "":
		repaired, err = s.applyStoredIntent(ctx, id, stored)
	case mine || pending == nil || inline:
		// No write waits in the link. The first commit of a caller that
		// asks again may have repaired the connection.
		if conn != nil && (repaired || mine) {
			s.announceOrLeave(ctx, fin, id)
		}
		return fin, nil
	default:
		repaired, err = s.applyIntent(ctx, id, pending)
	}
	if err != nil || s.deferApply {
		// The link ended; its connection is written, and its event
		// published, by the relay (DueOutbox).
		fin.Event = linkflow.Message{}
		return fin, nil
	}
	if repaired {
		s.announceOrLeave(ctx, fin, id)
	}
	return fin, nil
}

// announceOrLeave records the connection.healthy event of the connection
// link fin's link repaired, for the caller to publish; or, when that
// fails, leaves the link's own event to the relay, which records it first
// (settleIntents).
func (s *Store) announceOrLeave(ctx context.Context, fin *linkflow.Finished, linkID string) {
	if s.deferAnnounce {
		fin.Event = linkflow.Message{}
		return
	}
	m, err := s.announceRepair(ctx, linkID, fin.ConnectionID)
	if err != nil {
		fin.Event = linkflow.Message{}
		return
	}
	if m != nil {
		fin.ConnectionEvent = *m
	}
}

// eventParts splits a link's event body around the link's result, which
// the link keeps: the event record stores the parts, and event_body.lua
// puts the result between them when the event is read, so the result is
// stored once. The body stays whole when it does not hold the result as it
// is (a failure, a result left out for size), or when links are kept for
// less time than events, so the link might go first.
func (s *Store) eventParts(body []byte, result json.RawMessage) (head, tail []byte) {
	if len(result) == 0 || s.cfg.Retention < s.cfg.EventRetention {
		return body, nil
	}
	const closing = "}}" // of "data", then of the body (linkflow.NewLinkEvent)
	rest, ok := bytes.CutSuffix(body, []byte(closing))
	if !ok || !bytes.HasSuffix(rest, result) {
		return body, nil
	}
	return rest[:len(rest)-len(result)], body[len(rest):]
}

// connIntent is a finished link's connection write, kept in the link until
// it is applied to the connection (on a Cluster, or for the relay).
type connIntent struct {
	ConnectionID string `json:"c"`
	OrgID        string `json:"o"`
	At           int64  `json:"t"`
	Pairs        []any  `json:"p"`
	Once         []any  `json:"n"`
}

func (s *Store) connectionWrite(org, connID string, c *linkflow.ConnectionWrite, now int64, linkID string) (*connIntent, error) {
	pairs, once, err := s.connectionPairs(org, connID, c, now, linkID)
	if err != nil {
		return nil, err
	}
	return &connIntent{ConnectionID: connID, OrgID: org, At: now, Pairs: pairs, Once: once}, nil
}

// applyStoredIntent applies the intent a link keeps (the relay's way, after
// a process stopped between the two steps).
func (s *Store) applyStoredIntent(ctx context.Context, linkID, raw string) (bool, error) {
	var in connIntent
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return false, fmt.Errorf("connection intent of %s: %w", linkID, err)
	}
	return s.applyIntent(ctx, linkID, &in)
}

// connRepaired is conn_write.lua's answer for a write that made an 'error'
// connection healthy again, whose connection.healthy event is not recorded
// yet (announceRepair).
const connRepaired = "repaired"

// applyIntent writes a finished link's connection (conn_apply.lua, in the
// connection's shard; applying twice changes nothing, and a link older than
// the connection's last one changes nothing), then forgets the intent, which
// shows the link as ended. It reports whether the write repaired the
// connection (connRepaired).
func (s *Store) applyIntent(ctx context.Context, linkID string, in *connIntent) (bool, error) {
	if s.deferApply {
		return false, errors.New("connection writes deferred (a test)")
	}
	keys, argv := s.intentCall(linkID, in)
	res, err := connApplyScript.Run(ctx, s.rdb, keys, argv...).Text()
	if err != nil {
		return false, fmt.Errorf("apply the connection of %s: %w", linkID, err)
	}
	if err := s.rdb.HDel(ctx, s.k.link(linkID), fConnIntent).Err(); err != nil {
		return false, fmt.Errorf("settle %s: %w", linkID, err)
	}
	return res == connRepaired, nil
}

// intentCall is conn_apply.lua's keys and arguments for in.
func (s *Store) intentCall(linkID string, in *connIntent) ([]string, []any) {
	argv := make([]any, 0, 6+len(in.Pairs)+len(in.Once))
	argv = append(argv, linkID, in.ConnectionID, in.At, len(in.Pairs)/2, len(in.Once)/2, ConnectionLinkIDs)
	argv = append(argv, in.Pairs...)
	argv = append(argv, in.Once...)
	return []string{s.k.conn(in.ConnectionID), s.k.connLinks(in.ConnectionID), s.k.connIndex(shardOf(in.ConnectionID), in.OrgID)}, argv
}

// connectionPairs are the connection hash fields a successful link sets
// (pairs) and sets only when the connection is new (once).
func (s *Store) connectionPairs(org, connID string, c *linkflow.ConnectionWrite, now int64, linkID string) (pairs, once []any, err error) {
	pairs = []any{
		cUsername, c.Username,
		cStatus, string(linkflow.ConnHealthy), cStatusMessage, "", cUpdatedAt, now, cLastRefreshedAt, now,
		cLastLinkID, linkID, cLastFinishedAt, now,
	}
	if c.DisplayName != "" {
		pairs = append(pairs, cDisplayName, c.DisplayName)
	}
	if c.ExternalUserID != "" {
		pairs = append(pairs, cExternalUserID, c.ExternalUserID)
	}
	if c.WebhookURL != "" {
		pairs = append(pairs, cWebhookURL, c.WebhookURL)
	}
	if c.Credentials != nil {
		b, err := json.Marshal(c.Credentials)
		if err != nil {
			return nil, nil, err
		}
		pairs = append(pairs, cCredentials, s.keys.Seal(b, credentialsAAD(connID)))
	}
	// The connection's identity never changes (its id derives from it), so
	// only a new connection's write carries it.
	once = []any{cID, connID, cOrg, org, cIntegration, c.IntegrationID, cCreatedAt, now, cDisabled, "0", cMetadata, "{}"}
	return pairs, once, nil
}

// linkUpdate is a change to a link that does not end it.
type linkUpdate struct {
	set           []any
	del           []string
	release       bool
	attemptsDelta int
}

func (s *Store) updateLink(ctx context.Context, org, id string, f fence, u linkUpdate) error {
	kind, val := f.args()
	release := "0"
	if u.release {
		release = "1"
	}
	argv := []any{kind, val, release, u.attemptsDelta, len(u.set) / 2}
	argv = append(argv, u.set...)
	for _, d := range u.del {
		argv = append(argv, d)
	}
	keys := []string{s.k.link(id), s.k.linkLease(id)}
	if f.token != "" {
		// A session's update (it asks again, moves on or hands the link
		// back) spends the end user's answer to its last asking.
		keys = append(keys, s.k.linkInput(id))
	}
	res, err := updateLinkScript.Run(ctx, s.rdb, keys, argv...).Result()
	if err != nil {
		return fmt.Errorf("update link %s: %w", id, err)
	}
	switch r, _ := res.(string); {
	case r == "ok":
		return nil
	case strings.HasPrefix(r, "ended "):
		return &linkflow.StateError{Status: linkflow.Status(strings.TrimPrefix(r, "ended "))}
	}
	return linkflow.ErrFenced
}

// connArgs is how many arguments the connection's write adds to a commit.
func connArgs(in *connIntent) int {
	if in == nil {
		return 0
	}
	return 6 + len(in.Pairs) + len(in.Once)
}
