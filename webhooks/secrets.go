package webhooks

import (
	"context"
	"sync"
	"time"

	"github.com/linkflow/linkflow"
)

// secretCache keeps organizations' webhook secrets in this process for
// Config.SecretCacheTTL, so that an attempt neither reads the organization
// from Redis nor decrypts its secrets: at a high rate of webhooks that was a
// round trip and an AES opening or two per attempt. A rotated or new secret
// signs webhooks within the TTL; the previous secret stops signing at its
// own time. Concurrent misses for one organization share one read.
type secretCache struct {
	ttl  time.Duration // negative: no cache
	now  func() time.Time
	load func(ctx context.Context, org string) (*linkflow.Org, error)

	mu   sync.Mutex
	orgs map[string]*orgSecrets
}

type orgSecrets struct {
	secrets   []string  // the current one, then the previous one during a rotation
	prevUntil time.Time // when the previous one stops signing
	expires   time.Time // zero: never read yet
	loading   chan struct{}
}

// maxCachedOrgs bounds the cache; past it expired entries go, then any.
const maxCachedOrgs = 10000

func newSecretCache(ttl time.Duration, now func() time.Time, load func(context.Context, string) (*linkflow.Org, error)) *secretCache {
	return &secretCache{ttl: ttl, now: now, load: load, orgs: map[string]*orgSecrets{}}
}

// secrets returns the secrets that sign org's webhooks now, the current one
// first.
func (c *secretCache) secrets(ctx context.Context, org string) ([]string, error) {
	if c.ttl < 0 {
		o, err := c.load(ctx, org)
		if err != nil {
			return nil, err
		}
		return o.WebhookSecrets, nil
	}
	for {
		c.mu.Lock()
		now := c.now()
		e := c.orgs[org]
		if e != nil && now.Before(e.expires) {
			s := e.at(now)
			c.mu.Unlock()
			return s, nil
		}
		if e != nil && e.loading != nil {
			wait := e.loading
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if e == nil {
			if len(c.orgs) >= maxCachedOrgs {
				c.evict(now)
			}
			e = &orgSecrets{}
			c.orgs[org] = e
		}
		done := make(chan struct{})
		e.loading = done
		c.mu.Unlock()

		o, err := c.load(ctx, org)

		c.mu.Lock()
		e.loading = nil
		close(done)
		if err != nil {
			if e.expires.IsZero() {
				delete(c.orgs, org)
			}
			c.mu.Unlock()
			return nil, err
		}
		// Fresh as of now, from before the read.
		e.secrets, e.prevUntil, e.expires = o.WebhookSecrets, o.PreviousSecretUntil, now.Add(c.ttl)
		s := e.at(now)
		c.mu.Unlock()
		return s, nil
	}
}

// at returns the secrets that sign at now: the previous one only until its
// end.
func (e *orgSecrets) at(now time.Time) []string {
	if len(e.secrets) > 1 && !e.prevUntil.IsZero() && !now.Before(e.prevUntil) {
		return e.secrets[:1]
	}
	return e.secrets
}

// evict makes room: expired entries go first, then any not being read.
func (c *secretCache) evict(now time.Time) {
	for org, e := range c.orgs {
		if e.loading == nil && !now.Before(e.expires) {
			delete(c.orgs, org)
		}
	}
	for org, e := range c.orgs {
		if len(c.orgs) < maxCachedOrgs {
			return
		}
		if e.loading == nil {
			delete(c.orgs, org)
		}
	}
}
