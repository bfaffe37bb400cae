package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

var connAnnounceScript = script("conn_announce")

// fRepairedBy names, in a connection, the link whose write made it healthy
// again while its connection.healthy event is not recorded (conn_write.lua).
const fRepairedBy = "repairedBy"

// announceRepair records the connection.healthy event of connection connID,
// which link linkID's write made healthy again, and returns its message to
// publish; nil when there is nothing to announce (already recorded, another
// link's repair, or the connection is no longer healthy). The event's data
// is the connection as it is when recorded, read and checked by its version
// in one step (conn_announce.lua); a connection that changes meanwhile is
// read again.
func (s *Store) announceRepair(ctx context.Context, linkID, connID string) (*linkflow.Message, error) {
	for range 3 {
		h, links, err := s.readConnection(ctx, connID)
		if err != nil {
			return nil, fmt.Errorf("announce the repair of %s: %w", connID, err)
		}
		if h[fRepairedBy] != linkID {
			return nil, nil
		}
		// Only the credentials' non-secret parts are shown; ones this
		// process cannot open are left out rather than holding the event
		// (and the link's) back.
		c := s.decodeWithCredentials(connID, h, links)
		now := s.now()
		ev, body, err := linkflow.NewConnectionEvent(outbox.NewEventIDFor(connID), c, now)
		if err != nil {
			return nil, err
		}
		msg := outbox.EventMessage(c.OrgID, ev.ID, ev.Type)
		shard := shardOf(connID)
		res, err := connAnnounceScript.Run(ctx, s.rdb,
			[]string{s.k.conn(connID), s.k.outbox(shard), s.k.outboxMessages(shard), s.k.event(ev.ID)},
			linkID, strconv.FormatInt(c.Version, 10), ms(now), ev.ID, ev.Type, string(body),
			s.cfg.EventRetention.Milliseconds(), encodeMessage(msg)).Text()
		if err != nil {
			return nil, fmt.Errorf("announce the repair of %s: %w", connID, err)
		}
		switch res {
		case "ok":
			msg.Outbox = outboxName(shard)
			return &msg, nil
		case "done":
			return nil, nil
		}
	}
	return nil, errors.New("announce the repair of " + connID + ": the connection kept changing")
}
