package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

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
// result or error) in one atomic step, with its event and, when conn is
// given, its connection.
func (s *Store) finish(ctx context.Context, l *linkflow.Link, f fence, conn *linkflow.ConnectionWrite) (*linkflow.Finished, error) {
	org, id := l.OrgID, l.ID
	connID := ""
	if conn != nil {
		connID = conn.ID
		if connID == "" {
			existing, err := s.rdb.HGet(ctx, connByAccountKey(org), connAccountField(conn.IntegrationID, conn.Username)).Result()
			if err == nil {
				connID = existing
			} else {
				connID = NewConnectionID()
			}
		}
	}
	for range 3 {
		l.ConnectionID = connID
		now := s.now()
		ev, body, err := linkflow.NewLinkEvent(l.View("", now), ms(now))
		if err != nil {
			return nil, err
		}
		linkPairs := finalFields(l)
		var connPairs, connOnce []any
		if conn != nil {
			connPairs, connOnce, err = s.connectionPairs(org, connID, conn, now.UnixMilli(), id)
			if err != nil {
				return nil, err
			}
		}
		kind, val := f.args()
		keys := []string{
			linkKey(org, id), linkLeaseKey(org, id), linkCredKey(org, id), linkInputKey(org, id),
			eventsKey(org), outboxKey(org), expiringKey(org), connByAccountKey(org),
			connKey(org, connID), connLinksKey(org, connID), connIndexKey(org), linksRetentionKey(org),
			outboxMessagesKey(org), eventKey(org, ev.ID),
		}
		msg := outbox.EventMessage(org, ev.ID, ev.Type)
		argv := []any{kind, val, ms(now), id, s.cfg.Retention.Milliseconds(),
			ev.ID, ev.Type, l.WebhookURL, string(body), strconv.FormatInt(ms(now.Add(-s.cfg.EventRetention)), 10),
			connID, connAccountField(connIDIntegration(conn), connIDUsername(conn)),
			len(linkPairs) / 2, len(connPairs) / 2, len(connOnce) / 2,
			s.cfg.EventRetention.Milliseconds(), encodeMessage(msg)}
		argv = append(argv, linkPairs...)
		argv = append(argv, connPairs...)
		argv = append(argv, connOnce...)
		out, err := s.runStrings(ctx, finishLinkScript, "finish link "+id, keys, argv...)
		if err != nil {
			return nil, err
		}
		switch out[0] {
		case "ok":
			msg.Outbox = org
			return &linkflow.Finished{OrgID: org, EventID: ev.ID, EventType: ev.Type, ConnectionID: connID, Event: msg}, nil
		case "fenced":
			return nil, linkflow.ErrFenced
		case "connection_moved":
			connID = out[1]
			continue
		default:
			return nil, fmt.Errorf("finish link %s: unexpected reply %q", id, out[0])
		}
	}
	return nil, errors.New("finish link: connection kept moving")
}

func connIDIntegration(c *linkflow.ConnectionWrite) string {
	if c == nil {
		return ""
	}
	return c.IntegrationID
}

func connIDUsername(c *linkflow.ConnectionWrite) string {
	if c == nil {
		return ""
	}
	return c.Username
}

// connectionPairs are the connection hash fields a successful link sets
// (pairs) and sets only when the connection is new (once).
func (s *Store) connectionPairs(org, connID string, c *linkflow.ConnectionWrite, now int64, linkID string) (pairs, once []any, err error) {
	pairs = []any{
		cID, connID, cOrg, org, cIntegration, c.IntegrationID, cUsername, c.Username,
		cStatus, string(linkflow.ConnHealthy), cStatusMessage, "", cUpdatedAt, now, cLastRefreshedAt, now,
		cLastLinkID, linkID,
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
	once = []any{cCreatedAt, now, cDisabled, "0", cMetadata, "{}"}
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
	res, err := updateLinkScript.Run(ctx, s.rdb, []string{linkKey(org, id), linkLeaseKey(org, id)}, argv...).Result()
	if err != nil {
		return fmt.Errorf("update link %s: %w", id, err)
	}
	if res != "ok" {
		return linkflow.ErrFenced
	}
	return nil
}
