package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
)

func webhookSecretAAD(org string) string { return "org:" + org + ":webhookSecret" }

// NewWebhookSecret returns a new Standard Webhooks secret ("whsec_" + base64
// of 24 random bytes).
func NewWebhookSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// ValidWebhookSecret reports whether s is "whsec_" followed by base64.
func ValidWebhookSecret(s string) bool {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok || rest == "" {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(rest)
	return err == nil
}

// CreateOrg creates an organization with the given id (or a new one when id
// is empty) and webhook secret (or a new one). Creating an existing id again
// keeps it and updates nothing but its name: dev start-ups are idempotent.
func (s *Store) CreateOrg(ctx context.Context, id, name, webhookSecret string) (*linkflow.Org, error) {
	if id == "" {
		id = NewOrgID()
	}
	if !validID(id) {
		return nil, fmt.Errorf("invalid organization id %q", id)
	}
	if webhookSecret == "" {
		webhookSecret = NewWebhookSecret()
	}
	if !ValidWebhookSecret(webhookSecret) {
		return nil, errors.New("webhook secret must be whsec_ followed by base64")
	}
	now := s.now()
	pipe := s.rdb.TxPipeline()
	pipe.HSetNX(ctx, s.k.org(id), "id", id)
	pipe.HSetNX(ctx, s.k.org(id), "createdAt", ms(now))
	pipe.HSetNX(ctx, s.k.org(id), "webhookSecret", s.keys.Seal([]byte(webhookSecret), webhookSecretAAD(id)))
	pipe.HSet(ctx, s.k.org(id), "name", name)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	if err := s.rdb.SAdd(ctx, s.k.orgs(), id).Err(); err != nil {
		return nil, err
	}
	return s.Org(ctx, id)
}

// UpdateOrg changes an organization's settings in one step (org_update.lua):
// each field of u that is set replaces what was there. A new webhook secret
// keeps the one it replaces signing for PreviousSecretFor, when set; two
// rotations at once each keep the one before them.
func (s *Store) UpdateOrg(ctx context.Context, org string, u linkflow.OrgUpdate) error {
	if !validID(org) {
		return linkflow.ErrNotFound
	}
	secret, prevUntil := "", "0"
	if u.WebhookSecret != "" {
		if !ValidWebhookSecret(u.WebhookSecret) {
			return errors.New("webhook secret must be whsec_ followed by base64")
		}
		secret = s.keys.Seal([]byte(u.WebhookSecret), webhookSecretAAD(org))
		if u.PreviousSecretFor > 0 {
			prevUntil = strconv.FormatInt(ms(s.now().Add(u.PreviousSecretFor)), 10)
		}
	}
	var fields []any
	if u.AppSchemes != nil {
		schemes := *u.AppSchemes
		for _, sc := range schemes {
			if !linkflow.ValidAppScheme(sc) {
				return fmt.Errorf("app scheme %q: %s", sc, linkflow.AppSchemeRule)
			}
		}
		if len(schemes) > linkflow.MaxAppSchemes {
			return fmt.Errorf("at most %d app schemes", linkflow.MaxAppSchemes)
		}
		fields = append(fields, "appSchemes", strings.ToLower(strings.Join(schemes, " ")))
	}
	if u.AllowedOrigins != nil {
		origins, err := linkflow.ParseOrigins(*u.AllowedOrigins)
		if err != nil {
			return fmt.Errorf("%w (%s)", err, linkflow.AllowedOriginRule)
		}
		fields = append(fields, "allowedOrigins", strings.Join(origins, " "))
	}
	if secret == "" && len(fields) == 0 {
		return nil
	}
	found, err := orgUpdateScript.Run(ctx, s.rdb, []string{s.k.org(org)}, append([]any{secret, prevUntil}, fields...)...).Int()
	if err != nil {
		return fmt.Errorf("update organization %s: %w", org, err)
	}
	if found == 0 {
		return linkflow.ErrNotFound
	}
	return nil
}

// Org returns an organization with its webhook secrets opened.
func (s *Store) Org(ctx context.Context, id string) (*linkflow.Org, error) {
	if !validID(id) {
		return nil, linkflow.ErrNotFound
	}
	m, err := s.rdb.HGetAll(ctx, s.k.org(id)).Result()
	if err != nil {
		return nil, err
	}
	if m["id"] == "" {
		return nil, linkflow.ErrNotFound
	}
	o := &linkflow.Org{ID: id, Name: m["name"], CreatedAt: linkflow.FromMillis(atoi(m["createdAt"])),
		AppSchemes: strings.Fields(m["appSchemes"]), AllowedOrigins: strings.Fields(m["allowedOrigins"])}
	cur, err := s.keys.Open(m["webhookSecret"], webhookSecretAAD(id))
	if err != nil {
		return nil, fmt.Errorf("open webhook secret of %s: %w", id, err)
	}
	o.WebhookSecrets = []string{string(cur)}
	if until := linkflow.FromMillis(atoi(m["prevSecretUntil"])); m["prevWebhookSecret"] != "" && s.now().Before(until) {
		prev, err := s.keys.Open(m["prevWebhookSecret"], webhookSecretAAD(id))
		if err == nil {
			o.WebhookSecrets = append(o.WebhookSecrets, string(prev))
			o.PreviousSecretUntil = until
		}
	}
	return o, nil
}

// orgIDs returns the ids of every organization.
func (s *Store) orgIDs(ctx context.Context) ([]string, error) {
	return s.rdb.SMembers(ctx, s.k.orgs()).Result()
}

// APIKey is an API key's record (never the key itself).
type APIKey struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"orgId"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"createdAt"`
}

// MinAPIKeyLength is the shortest API key linkflow accepts: a key of its own
// making has 52 characters; a chosen one (dev's) must not be guessable.
const MinAPIKeyLength = 16

// CreateAPIKey stores a new API key for org and returns it; the key itself is
// shown only this once (only its hash is stored). key may be given (dev's
// LINKFLOW_DEV_API_KEY); empty makes a new "lfk_..." key.
func (s *Store) CreateAPIKey(ctx context.Context, org, name, key string, scopes []string) (string, *APIKey, error) {
	if key == "" {
		key = NewAPIKey()
	}
	if len(scopes) == 0 {
		scopes = linkflow.AllScopes
	}
	for _, sc := range scopes {
		if !slices.Contains(linkflow.AllScopes, sc) {
			return "", nil, fmt.Errorf("unknown scope %q", sc)
		}
	}
	if _, err := s.Org(ctx, org); err != nil {
		return "", nil, fmt.Errorf("organization %s: %w", org, err)
	}
	h := hashHex(key)
	if len(key) < MinAPIKeyLength {
		return "", nil, fmt.Errorf("an API key must have at least %d characters", MinAPIKeyLength)
	}
	// Nothing of the key itself is kept: its SHA-256 names the record, and
	// the id (a prefix of that hash) is what operators see.
	rec := &APIKey{ID: "key_" + h[:16], OrgID: org, Name: name, Scopes: scopes, CreatedAt: s.now()}
	pipe := s.rdb.Pipeline()
	pipe.HSet(ctx, s.k.apiKey(h), "id", rec.ID, "org", org, "name", name, "scopes", strings.Join(scopes, " "),
		"createdAt", ms(rec.CreatedAt))
	pipe.HSet(ctx, s.k.orgAPIKeys(org), rec.ID, h)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", nil, err
	}
	return key, rec, nil
}

// RevokeAPIKey deletes an API key by id; it stops working at once on every
// API process (keys are looked up on every request, never cached). org may
// be "" when the caller does not know it (the CLI): the key's organization is
// looked for then.
func (s *Store) RevokeAPIKey(ctx context.Context, org, keyID string) error {
	if org == "" {
		orgs, err := s.orgIDs(ctx)
		if err != nil {
			return err
		}
		for _, o := range orgs {
			if ok, err := s.rdb.HExists(ctx, s.k.orgAPIKeys(o), keyID).Result(); err != nil {
				return err
			} else if ok {
				org = o
				break
			}
		}
		if org == "" {
			return linkflow.ErrNotFound
		}
	}
	h, err := s.rdb.HGet(ctx, s.k.orgAPIKeys(org), keyID).Result()
	if errors.Is(err, redis.Nil) {
		return linkflow.ErrNotFound
	}
	if err != nil {
		return err
	}
	// The record first, then its entry in the index, in two steps: on a
	// Redis Cluster they live on different nodes, and an index entry gone
	// while the record stayed (its node failing over) would leave a key
	// that works and can no longer be revoked by its id. A revoke that
	// fails half way is tried again from the index.
	if err := s.rdb.Del(ctx, s.k.apiKey(h)).Err(); err != nil {
		return err
	}
	return s.rdb.HDel(ctx, s.k.orgAPIKeys(org), keyID).Err()
}

// Authenticate returns the principal of an API key or access token, or
// ErrNotFound when it is neither (or was revoked, or expired). A gate (a
// rate limit peek, typically at failures from the caller's address) is
// asked in the same round trip: when it refuses, Authenticate returns its
// answer and no principal, and the secret is not judged.
func (s *Store) Authenticate(ctx context.Context, secret string, gate *linkflow.RateLimitRequest) (*linkflow.Principal, *linkflow.RateLimitResult, error) {
	if secret == "" && gate == nil {
		return nil, nil, linkflow.ErrNotFound
	}
	h := hashHex(secret)
	pipe := s.pipeline()
	var gated func() (*linkflow.RateLimitResult, error)
	if gate != nil {
		var err error
		if gated, err = s.rateLimitIn(ctx, pipe, *gate); err != nil {
			return nil, nil, err
		}
	}
	key := pipe.HGetAll(ctx, s.k.apiKey(h))
	tok := pipe.HGetAll(ctx, s.k.accessToken(h))
	if err := pipe.Exec(ctx); err != nil {
		return nil, nil, err
	}
	if gated != nil {
		res, err := gated()
		if err != nil {
			return nil, nil, err
		}
		if !res.Allowed {
			return nil, res, nil
		}
	}
	if secret == "" {
		return nil, nil, linkflow.ErrNotFound
	}
	p, err := s.principal(ctx, key.Val(), tok.Val())
	return p, nil, err
}

func (s *Store) principal(ctx context.Context, key, tok map[string]string) (*linkflow.Principal, error) {
	if m := key; m["org"] != "" {
		return &linkflow.Principal{OrgID: m["org"], KeyID: m["id"], Subject: "key:" + m["id"], Scopes: strings.Fields(m["scopes"])}, nil
	}
	if m := tok; m["org"] != "" {
		switch {
		case m["keyHash"] != "":
			// A token exchanged for an API key dies with the key.
			n, err := s.rdb.Exists(ctx, s.k.apiKey(m["keyHash"])).Result()
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, linkflow.ErrNotFound
			}
		case strings.HasPrefix(m["subject"], "user:"):
			// A user's token dies with a change of the user (password,
			// organizations) or a revocation of the user's tokens.
			v, err := s.rdb.HGet(ctx, s.k.user(strings.TrimPrefix(m["subject"], "user:")), "version").Result()
			if errors.Is(err, redis.Nil) || (err == nil && v != m["userVersion"]) {
				return nil, linkflow.ErrNotFound
			}
			if err != nil {
				return nil, err
			}
		}
		return &linkflow.Principal{OrgID: m["org"], KeyID: m["keyId"], Subject: m["subject"], Scopes: strings.Fields(m["scopes"]),
			AccessToken: true, UserVersion: atoi(m["userVersion"])}, nil
	}
	return nil, linkflow.ErrNotFound
}

// IssueToken creates a short-lived access token ("lft_...") for p, narrowed
// to scopes (which must be a subset of p's), valid for ttl.
func (s *Store) IssueToken(ctx context.Context, p *linkflow.Principal, keySecret string, scopes []string, ttl time.Duration) (string, error) {
	tok := randomToken("lft_", 24)
	fields := []any{"org", p.OrgID, "subject", p.Subject, "scopes", strings.Join(scopes, " "), "keyId", p.KeyID}
	if keySecret != "" {
		fields = append(fields, "keyHash", hashHex(keySecret))
	}
	if strings.HasPrefix(p.Subject, "user:") {
		fields = append(fields, "userVersion", p.UserVersion)
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, s.k.accessToken(hashHex(tok)), fields...)
	pipe.PExpire(ctx, s.k.accessToken(hashHex(tok)), ttl)
	_, err := pipe.Exec(ctx)
	return tok, err
}

// CreateUser stores a user, or replaces an existing one's password hash,
// organizations and scopes; passwordHash is a bcrypt hash. Either way the
// user's version moves on, so tokens issued before stop working.
func (s *Store) CreateUser(ctx context.Context, u linkflow.User) error {
	if len(u.Scopes) == 0 {
		u.Scopes = linkflow.AllScopes
	}
	k := s.k.user(strings.ToLower(u.Email))
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, k, "email", strings.ToLower(u.Email),
		"passwordHash", u.PasswordHash, "orgs", strings.Join(u.OrgIDs, " "), "scopes", strings.Join(u.Scopes, " "))
	pipe.HIncrBy(ctx, k, "version", 1)
	_, err := pipe.Exec(ctx)
	return err
}

// RevokeUserTokens makes every access token issued to the user so far stop
// working. It returns linkflow.ErrNotFound for an unknown user.
func (s *Store) RevokeUserTokens(ctx context.Context, email string) error {
	k := s.k.user(strings.ToLower(email))
	n, err := s.rdb.Exists(ctx, k).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return linkflow.ErrNotFound
	}
	return s.rdb.HIncrBy(ctx, k, "version", 1).Err()
}

// UserByEmail returns a user, or linkflow.ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (*linkflow.User, error) {
	m, err := s.rdb.HGetAll(ctx, s.k.user(strings.ToLower(email))).Result()
	if err != nil {
		return nil, err
	}
	if m["email"] == "" {
		return nil, linkflow.ErrNotFound
	}
	return &linkflow.User{Email: m["email"], PasswordHash: m["passwordHash"], OrgIDs: strings.Fields(m["orgs"]),
		Scopes: strings.Fields(m["scopes"]), Version: atoi(m["version"])}, nil
}
