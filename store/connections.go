package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/linkflow/linkflow"
)

// Connection returns an organization's connection, credentials not opened.
func (s *Store) Connection(ctx context.Context, org, id string) (*linkflow.Connection, error) {
	if !validID(id) || !validID(org) {
		return nil, ErrNotFound
	}
	m, err := s.rdb.HGetAll(ctx, connKey(org, id)).Result()
	if err != nil {
		return nil, err
	}
	if m[cID] == "" {
		return nil, ErrNotFound
	}
	return decodeConnection(m), nil
}

// ConnectionCredentials opens a connection's credentials.
func (s *Store) ConnectionCredentials(ctx context.Context, org, id string) (*linkflow.Credentials, error) {
	sealed, err := s.rdb.HGet(ctx, connKey(org, id), cCredentials).Result()
	if err != nil || sealed == "" {
		return nil, ErrNotFound
	}
	pt, err := s.keys.Open(sealed, credentialsAAD(id))
	if err != nil {
		return nil, fmt.Errorf("open credentials of %s: %w", id, err)
	}
	var c linkflow.Credentials
	if err := json.Unmarshal(pt, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeConnection(m map[string]string) *linkflow.Connection {
	c := &linkflow.Connection{
		ID: m[cID], OrgID: m[cOrg], IntegrationID: m[cIntegration], Username: m[cUsername],
		ExternalUserID: m[cExternalUserID], DisplayName: m[cDisplayName],
		Status: linkflow.ConnStatus(m[cStatus]), StatusMessage: m[cStatusMessage],
		Disabled: m[cDisabled] == "1", WebhookURL: m[cWebhookURL],
		CreatedAt:       linkflow.FromMillis(atoi(m[cCreatedAt])),
		UpdatedAt:       linkflow.FromMillis(atoi(m[cUpdatedAt])),
		LastRefreshedAt: linkflow.FromMillis(atoi(m[cLastRefreshedAt])),
		Version:         atoi(m[cVersion]),
	}
	if md := m[cMetadata]; md != "" {
		c.Metadata = json.RawMessage(md)
	}
	return c
}
