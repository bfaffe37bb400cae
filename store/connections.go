package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
)

// Limits on what a connection keeps.
const (
	// MaxConnectionMetadata bounds a connection's metadata (compact JSON).
	MaxConnectionMetadata = linkflow.MaxConnectionMetadata
	// ConnectionLinkIDs is how many link ids a connection lists: the most
	// recent ones (finish_link.lua trims the list to as many).
	ConnectionLinkIDs = 100
	// SecretReadsKept is how many secret reads a connection remembers.
	SecretReadsKept = linkflow.SecretReadsKept
)

var connUpdateScript = script("conn_update")

func (s *Store) openCredentials(id, sealed string) (*linkflow.Credentials, error) {
	pt, err := s.keys.Open(sealed, credentialsAAD(id))
	if err != nil {
		return nil, fmt.Errorf("open credentials of %s: %w", id, err)
	}
	var c linkflow.Credentials
	if err := json.Unmarshal(pt, &c); err != nil {
		return nil, fmt.Errorf("decode credentials of %s: %w: %w", id, ErrUnsealable, err)
	}
	return &c, nil
}

// Connection returns an organization's connection with its recent link ids
// and its credentials opened. The credentials are in memory only: the
// caller's view decides whether they are shown.
func (s *Store) Connection(ctx context.Context, org, id string) (*linkflow.Connection, error) {
	if !validID(id) || !validID(org) {
		return nil, linkflow.ErrNotFound
	}
	h, links, err := s.readConnection(ctx, id)
	if err != nil {
		return nil, err
	}
	if h[cOrg] != org {
		return nil, linkflow.ErrNotFound
	}
	return s.connectionFromHash(id, h, links)
}

// readConnection reads connection id's hash and its recent link ids, in one
// round trip (both are in the connection's shard).
func (s *Store) readConnection(ctx context.Context, id string) (map[string]string, []string, error) {
	pipe := s.rdb.Pipeline()
	h := pipe.HGetAll(ctx, s.k.conn(id))
	links := pipe.LRange(ctx, s.k.connLinks(id), -ConnectionLinkIDs, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	return h.Val(), links.Val(), nil
}

// connectionFromHash decodes a connection with its credentials opened;
// credentials that cannot be opened leave it Unreadable, not an error, so
// that it can still be shown, renewed and deleted.
func (s *Store) connectionFromHash(id string, m map[string]string, links []string) (*linkflow.Connection, error) {
	if m[cID] == "" {
		return nil, linkflow.ErrNotFound
	}
	return s.decodeWithCredentials(id, m, links), nil
}

// decodeWithCredentials decodes a connection's hash and opens its
// credentials; ones that cannot be opened (openCredentials' errors are all
// ErrUnsealable) leave it Unreadable, naming the key when it is one this
// process is not given.
func (s *Store) decodeWithCredentials(id string, m map[string]string, links []string) *linkflow.Connection {
	c := decodeConnection(m)
	c.LinkIDs = links
	if sealed := m[cCredentials]; sealed != "" {
		creds, err := s.openCredentials(id, sealed)
		c.Credentials, c.Unreadable = creds, err != nil
		if errors.Is(err, linkflow.ErrUnknownKey) {
			c.UnknownKey = SealedWith(sealed)
		}
	}
	return c
}

func decodeConnection(m map[string]string) *linkflow.Connection {
	c := &linkflow.Connection{
		ID: m[cID], OrgID: m[cOrg], IntegrationID: m[cIntegration], Username: m[cUsername],
		ExternalUserID: m[cExternalUserID], DisplayName: m[cDisplayName],
		Status: linkflow.ConnStatus(m[cStatus]), StatusMessage: m[cStatusMessage],
		Disabled: m[cDisabled] == "1", WebhookURL: m[cWebhookURL],
		CreatedAt:         linkflow.FromMillis(atoi(m[cCreatedAt])),
		UpdatedAt:         linkflow.FromMillis(atoi(m[cUpdatedAt])),
		LastRefreshedAt:   linkflow.FromMillis(atoi(m[cLastRefreshedAt])),
		RevokedAt:         linkflow.FromMillis(atoi(m[cRevokedAt])),
		RevokedAtProvider: m[cRevokedAtProvider] == "1",
		Version:           atoi(m[cVersion]),
		Refreshes:         atoi(m[cRefreshes]),
		LastLinkID:        m[cLastLinkID],
	}
	if md := m[cMetadata]; md != "" {
		c.Metadata = json.RawMessage(md)
	}
	return c
}

// ListConnections returns an organization's connections, newest first,
// after cursor ("" for the first page; otherwise the nextCursor of the
// previous page). The organization's index has one part per shard, whose
// members sort by creation time ("<id of the link that made it>:<id>": link
// ids sort by time), so pages stay stable while connections are being made. Filters are applied while
// scanning the index; a page that stopped after maxScan entries comes back
// short with a cursor to go on. Credentials are opened for their non-secret
// parts (type, scope, expiry); one that cannot be opened leaves its
// connection Unreadable rather than failing the page. next is "" when there is nothing more.
func (s *Store) ListConnections(ctx context.Context, org string, f linkflow.ConnectionFilter, cursor string, limit int) (conns []*linkflow.Connection, next string, err error) {
	if cursor != "" && !validConnCursor(cursor) {
		return nil, "", linkflow.ErrBadCursor
	}
	index := func(sh int) string { return s.k.connIndex(sh, org) }
	after := cursor
	scanned := 0
	for len(conns) < limit && scanned < maxScan {
		batch := max(limit-len(conns), 50)
		members, more, err := s.mergeNewest(ctx, index, after, batch)
		if err != nil {
			return nil, "", err
		}
		if len(members) == 0 {
			return conns, "", nil
		}
		scanned += len(members)
		pipe := s.rdb.Pipeline()
		hashes := make([]*redis.MapStringStringCmd, len(members))
		links := make([]*redis.StringSliceCmd, len(members))
		for i, m := range members {
			id := connOfMember(m)
			hashes[i] = pipe.HGetAll(ctx, s.k.conn(id))
			links[i] = pipe.LRange(ctx, s.k.connLinks(id), -ConnectionLinkIDs, -1)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", err
		}
		for i, member := range members {
			after = member
			m := hashes[i].Val()
			if m[cID] == "" || m[cOrg] != org {
				continue
			}
			if (f.Status != "" && linkflow.ConnStatus(m[cStatus]) != f.Status) || (f.IntegrationID != "" && m[cIntegration] != f.IntegrationID) ||
				(f.ExternalUserID != "" && m[cExternalUserID] != f.ExternalUserID) {
				continue
			}
			c := s.decodeWithCredentials(m[cID], m, links[i].Val())
			conns = append(conns, c)
			if len(conns) == limit {
				if i < len(members)-1 || more {
					next = member
				}
				return conns, next, nil
			}
		}
		if !more {
			return conns, "", nil
		}
	}
	return conns, after, nil
}

// connOfMember is the connection id of a connections index member.
func connOfMember(m string) string {
	_, id, _ := strings.Cut(m, ":")
	return id
}

// validConnCursor accepts a connections index member.
func validConnCursor(c string) bool {
	link, id, ok := strings.Cut(c, ":")
	return ok && strings.HasPrefix(link, "link_") && validID(link) && strings.HasPrefix(id, "conn_") && validID(id)
}

// UpdateConnection applies p in one atomic step and returns the connection
// after it, credentials opened. There is no read-modify-write: every field
// of p replaces what was there, so concurrent patches need no version check.
func (s *Store) UpdateConnection(ctx context.Context, org, id string, p linkflow.ConnectionPatch) (*linkflow.Connection, error) {
	if !validID(id) || !validID(org) {
		return nil, linkflow.ErrNotFound
	}
	argv := []any{ms(s.now()), org}
	if p.Metadata != nil {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(p.Metadata, &obj); err != nil || obj == nil {
			return nil, errors.New("update connection: metadata must be a JSON object")
		}
		if len(p.Metadata) > MaxConnectionMetadata {
			return nil, fmt.Errorf("update connection: metadata over %d bytes", MaxConnectionMetadata)
		}
		argv = append(argv, cMetadata, string(p.Metadata))
	}
	if p.DisplayName != nil {
		argv = append(argv, cDisplayName, *p.DisplayName)
	}
	if p.Disabled != nil {
		d := "0"
		if *p.Disabled {
			d = "1"
		}
		argv = append(argv, cDisabled, d)
	}
	res, err := connUpdateScript.Run(ctx, s.rdb, []string{s.k.conn(id)}, argv...).Text()
	if err != nil {
		return nil, fmt.Errorf("update connection %s: %w", id, err)
	}
	switch res {
	case "ok":
		return s.Connection(ctx, org, id)
	case "missing":
		return nil, linkflow.ErrNotFound
	case "revoked":
		return nil, linkflow.ErrConnectionRevoked
	}
	return nil, fmt.Errorf("update connection %s: unexpected reply %q", id, res)
}

type secretReadRecord struct {
	At        int64  `json:"at"`
	Subject   string `json:"subject"`
	KeyID     string `json:"keyId,omitempty"`
	Address   string `json:"address,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// RecordSecretRead appends r to the connection's secret reads (the newest
// SecretReadsKept are kept). The API records a read before it sends the
// secrets, so a read that could not be recorded is not served.
func (s *Store) RecordSecretRead(ctx context.Context, org, id string, r linkflow.SecretRead) error {
	b, err := json.Marshal(secretReadRecord{At: ms(r.At), Subject: r.Subject, KeyID: r.KeyID, Address: r.Address, RequestID: r.RequestID})
	if err != nil {
		return err
	}
	pipe := s.rdb.TxPipeline()
	pipe.LPush(ctx, s.k.connReads(id), b)
	pipe.LTrim(ctx, s.k.connReads(id), 0, SecretReadsKept-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record secret read of %s: %w", id, err)
	}
	return nil
}

// SecretReads returns a connection's most recent secret reads, newest first.
func (s *Store) SecretReads(ctx context.Context, org, id string, limit int) ([]linkflow.SecretRead, error) {
	if !validID(id) || !validID(org) {
		return nil, linkflow.ErrNotFound
	}
	pipe := s.rdb.Pipeline()
	owner := pipe.HGet(ctx, s.k.conn(id), cOrg)
	reads := pipe.LRange(ctx, s.k.connReads(id), 0, int64(limit)-1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	if owner.Val() != org {
		return nil, linkflow.ErrNotFound
	}
	out := make([]linkflow.SecretRead, 0, len(reads.Val()))
	for _, raw := range reads.Val() {
		var rec secretReadRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			continue
		}
		out = append(out, linkflow.SecretRead{At: linkflow.FromMillis(rec.At), Subject: rec.Subject, KeyID: rec.KeyID,
			Address: rec.Address, RequestID: rec.RequestID})
	}
	return out, nil
}
