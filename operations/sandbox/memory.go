package sandbox

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// MemoryStore keeps the sandbox's state in the process: nothing is shared
// with other processes and nothing survives a restart. It exists for
// benchmarks that measure linkflow itself (`linkflow worker --sandbox-memory`),
// where the sandbox's own Redis work would be counted as linkflow's; tests
// and deployments use RedisStore.
type MemoryStore struct {
	mu       sync.Mutex
	items    map[AccountRef]map[string][]json.RawMessage
	log      map[AccountRef][]WriteRecord
	idem     map[AccountRef]map[string]WriteRecord
	sessions map[string]map[string]time.Time // integration -> id -> expiry
	maximum  map[string]int
	grants   map[string]*Grant
}

var _ AccountStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty in-process store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{items: map[AccountRef]map[string][]json.RawMessage{}, log: map[AccountRef][]WriteRecord{},
		idem: map[AccountRef]map[string]WriteRecord{}, sessions: map[string]map[string]time.Time{},
		maximum: map[string]int{}, grants: map[string]*Grant{}}
}

// ApplySandboxWrite records a write once per idempotency key.
func (m *MemoryStore) ApplySandboxWrite(_ context.Context, a AccountRef, w WriteRecord) (WriteRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.idem[a] == nil {
		m.idem[a], m.items[a] = map[string]WriteRecord{}, map[string][]json.RawMessage{}
	}
	if first, ok := m.idem[a][w.IdempotencyKey]; ok {
		return first, true, nil
	}
	m.idem[a][w.IdempotencyKey] = w
	items := append([]json.RawMessage{w.Result}, m.items[a][w.Resource]...)
	m.items[a][w.Resource] = items[:min(len(items), ItemsKept)]
	l := append(m.log[a], w)
	m.log[a] = l[max(0, len(l)-writeLogMax):]
	return w, false, nil
}

// SandboxItems returns what writes added to resource, newest first.
func (m *MemoryStore) SandboxItems(_ context.Context, a AccountRef, resource string) ([]json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]json.RawMessage(nil), m.items[a][resource]...), nil
}

// SandboxWriteLog returns the account's write log, oldest first.
func (m *MemoryStore) SandboxWriteLog(_ context.Context, a AccountRef) ([]WriteRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]WriteRecord(nil), m.log[a]...), nil
}

// StartSandboxSession counts a session, saves a grant and loads items.
func (m *MemoryStore) StartSandboxSession(_ context.Context, st SessionStart) (SessionStarted, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out SessionStarted
	if c := st.Count; c != nil {
		live := m.liveLocked(st.Account.Integration, c.Now)
		live[c.ID] = c.ExpiresAt
		out.Live = len(live)
		m.maximum[st.Account.Integration] = max(m.maximum[st.Account.Integration], out.Live)
	}
	if g := st.Grant; g != nil {
		c := *g
		if c.Status == "" {
			c.Status = GrantActive
		}
		m.grants[g.ID] = &c
	}
	if len(st.Load) > 0 {
		out.Written = map[string][]json.RawMessage{}
		for _, r := range st.Load {
			out.Written[r] = append([]json.RawMessage(nil), m.items[st.Account][r]...)
		}
	}
	return out, nil
}

func (m *MemoryStore) liveLocked(integration string, now time.Time) map[string]time.Time {
	live := m.sessions[integration]
	if live == nil {
		live = map[string]time.Time{}
		m.sessions[integration] = live
	}
	for id, exp := range live {
		if !exp.After(now) {
			delete(live, id)
		}
	}
	return live
}

// RenewSandboxSession moves a live session's expiry.
func (m *MemoryStore) RenewSandboxSession(_ context.Context, integration, id string, expiresAt time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[integration][id]; ok {
		m.sessions[integration][id] = expiresAt
	}
	return nil
}

// CloseSandboxSession stops counting a session.
func (m *MemoryStore) CloseSandboxSession(_ context.Context, integration, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions[integration], id)
	return nil
}

// SandboxSessions returns the live count and the recorded maximum.
func (m *MemoryStore) SandboxSessions(_ context.Context, integration string, now time.Time) (int, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.liveLocked(integration, now)), m.maximum[integration], nil
}

// ResetSandboxSessions sets the recorded maximum to the live count.
func (m *MemoryStore) ResetSandboxSessions(_ context.Context, integration string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maximum[integration] = len(m.liveLocked(integration, now))
	return nil
}

// SandboxGrant returns a grant, nil when there is none.
func (m *MemoryStore) SandboxGrant(_ context.Context, id string) (*Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.grants[id]; g != nil {
		c := *g
		return &c, nil
	}
	return nil, nil
}

// RotateSandboxGrant replaces an active grant's tokens.
func (m *MemoryStore) RotateSandboxGrant(_ context.Context, id, refreshHash, newAccessHash, newRefreshHash string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.grants[id]
	if g == nil || g.Status != GrantActive || g.RefreshHash != refreshHash {
		return false, nil
	}
	g.AccessHash, g.RefreshHash = newAccessHash, newRefreshHash
	g.Refreshes++
	return true, nil
}

// RevokeSandboxGrant revokes a grant.
func (m *MemoryStore) RevokeSandboxGrant(_ context.Context, id, tokenHash string, at time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.grants[id]
	if g == nil || (g.AccessHash != tokenHash && g.RefreshHash != tokenHash) {
		return false, nil
	}
	if g.Status != GrantRevoked {
		g.Status, g.RevokedAt = GrantRevoked, at
	}
	return true, nil
}
