package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

var resealScript = script("reseal")

// sealedPlace says where a sealed value lives and what it was sealed for.
type sealedPlace struct {
	key, field, aad string
	// maybePlain: a release before 2026-12-01 stored this value as it was
	// (idempotency records, gone a day after the upgrade); any other place
	// is always sealed.
	maybePlain bool
	// intent: the value is a connection intent, whose credentials are
	// sealed (aad is then the intent's own: see intentCredentials).
	intent bool
}

func place(key, field, aad string) sealedPlace { return sealedPlace{key: key, field: field, aad: aad} }

// sealedPlaces returns the sealed values a key may hold, from its name (the
// layout of keys.go).
func (k keyspace) sealedPlaces(key string) []sealedPlace {
	_, rest, ok := strings.Cut(key, "}:")
	if !ok || !strings.HasPrefix(key, k.p+"{") {
		return nil
	}
	org := strings.TrimPrefix(key[:strings.Index(key, "}:")], k.p+"{")
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 1 && parts[0] == "org":
		return []sealedPlace{place(key, "webhookSecret", webhookSecretAAD(org)), place(key, "prevWebhookSecret", webhookSecretAAD(org))}
	case len(parts) == 2 && parts[0] == "link":
		return []sealedPlace{place(key, fArgs, argsAAD(parts[1])), place(key, fClaimCode, claimCodeAAD(parts[1])),
			{key: key, field: fConnIntent, intent: true}}
	case len(parts) == 3 && parts[0] == "link" && parts[2] == "cred":
		return []sealedPlace{place(key, "", passwordAAD(parts[1]))}
	case len(parts) == 3 && parts[0] == "link" && parts[2] == "input":
		return []sealedPlace{place(key, "", inputAAD(parts[1]))}
	case len(parts) == 2 && parts[0] == "conn":
		return []sealedPlace{place(key, cCredentials, credentialsAAD(parts[1]))}
	case len(parts) == 4 && parts[0] == "o" && parts[2] == "idem":
		return []sealedPlace{{key: key, field: "response", aad: idemAAD(parts[1], parts[3]), maybePlain: true}}
	}
	return nil
}

// Sealed is what RotateData found: how many values it re-sealed, and how
// many values each key (by id) seals after it. A key that seals nothing any
// more can be retired.
type Sealed struct {
	Resealed int
	ByKey    map[string]int
	// Complete says the scan read every sealed value: without it ByKey
	// counts only those read before it stopped, and a key it does not
	// list may still seal values.
	Complete bool
}

// RotateData counts the sealed values in Redis by the key that sealed them
// and, with reseal, first re-seals every one that was not sealed with the
// primary key, so old keys can be retired. It scans the keyspace in the
// background of a running deployment: values that change meanwhile are left
// to their new writer (which seals with the primary key; a webhook-secret
// rotation copies the secret it replaces as it is sealed: before this scan
// reaches the organization, the scan re-seals the copy; after, it copies a
// value the scan already re-sealed).
func (s *Store) RotateData(ctx context.Context, reseal bool) (*Sealed, error) {
	out := &Sealed{ByKey: map[string]int{}}
	var errs []error
	var mu sync.Mutex // out and errs: a Cluster's masters are scanned side by side
	failed := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	err := s.eachKey(ctx, func(c *redis.Client, key string) error {
		for _, p := range s.k.sealedPlaces(key) {
			if reseal {
				done, err := s.reseal(ctx, p)
				if err != nil {
					failed(err)
				} else if done {
					mu.Lock()
					out.Resealed++
					mu.Unlock()
				}
			}
			var v string
			var err error
			if p.field == "" {
				v, err = c.Get(ctx, p.key).Result()
			} else {
				v, err = c.HGet(ctx, p.key, p.field).Result()
			}
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return err
			}
			if v == "" {
				continue
			}
			if p.intent {
				if v, _, _, err = intentCredentials(v); err != nil {
					failed(fmt.Errorf("%s %s: %w", p.key, p.field, err))
					continue
				}
				if v == "" {
					continue // a write without credentials
				}
			}
			if p.maybePlain && !strings.HasPrefix(v, sealedPrefix) {
				continue // an idempotency record of an earlier release, kept as it was
			}
			mu.Lock()
			out.ByKey[SealedWith(v)]++
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("the scan stopped: %w", err))
	}
	out.Complete = err == nil
	return out, errors.Join(errs...)
}

func (s *Store) reseal(ctx context.Context, p sealedPlace) (bool, error) {
	var old string
	var err error
	if p.field == "" {
		old, err = s.rdb.Get(ctx, p.key).Result()
	} else {
		old, err = s.rdb.HGet(ctx, p.key, p.field).Result()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("%s %s: %w", p.key, p.field, err)
	}
	if err == nil && old != "" && p.intent {
		return s.resealIntent(ctx, p, old)
	}
	if errors.Is(err, redis.Nil) || old == "" || s.keys.IsCurrent(old) || (p.maybePlain && !strings.HasPrefix(old, sealedPrefix)) {
		return false, nil
	}
	pt, err := s.keys.Open(old, p.aad)
	if err != nil {
		return false, fmt.Errorf("open %s %s: %w", p.key, p.field, err)
	}
	ok, err := resealScript.Run(ctx, s.rdb, []string{p.key}, p.field, old, s.keys.Seal(pt, p.aad)).Int()
	return ok == 1, err
}

// resealIntent re-seals the credentials in a connection intent, raw.
func (s *Store) resealIntent(ctx context.Context, p sealedPlace, raw string) (bool, error) {
	sealed, aad, with, err := intentCredentials(raw)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", p.key, p.field, err)
	}
	if sealed == "" || s.keys.IsCurrent(sealed) {
		return false, nil
	}
	pt, err := s.keys.Open(sealed, aad)
	if err != nil {
		return false, fmt.Errorf("open %s %s: %w", p.key, p.field, err)
	}
	updated, err := with(s.keys.Seal(pt, aad))
	if err != nil {
		return false, err
	}
	ok, err := resealScript.Run(ctx, s.rdb, []string{p.key}, p.field, raw, updated).Int()
	return ok == 1, err
}

// intentCredentials finds the sealed credentials in a connection intent
// (the JSON a link keeps until its connection is written): the sealed value
// ("" for a write without credentials), what it was sealed for, and a
// function that returns the intent with another sealed value in its place
// and the rest as it was.
func intentCredentials(raw string) (sealed, aad string, with func(string) (string, error), err error) {
	var whole map[string]json.RawMessage
	var in struct {
		ConnectionID string            `json:"c"`
		Pairs        []json.RawMessage `json:"p"`
	}
	if err := json.Unmarshal([]byte(raw), &whole); err != nil {
		return "", "", nil, fmt.Errorf("connection intent: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return "", "", nil, fmt.Errorf("connection intent: %w", err)
	}
	for i := 0; i+1 < len(in.Pairs); i += 2 {
		var field string
		if json.Unmarshal(in.Pairs[i], &field) != nil || field != cCredentials {
			continue
		}
		if err := json.Unmarshal(in.Pairs[i+1], &sealed); err != nil {
			return "", "", nil, fmt.Errorf("connection intent's credentials: %w", err)
		}
		with = func(v string) (string, error) {
			pairs := slices.Clone(in.Pairs)
			pairs[i+1], _ = json.Marshal(v)
			whole["p"], _ = json.Marshal(pairs)
			b, err := json.Marshal(whole)
			return string(b), err
		}
		return sealed, credentialsAAD(in.ConnectionID), with, nil
	}
	return "", "", nil, nil
}

// eachKey calls fn for every key of linkflow's (with a hash tag), on every
// master: a Cluster's masters side by side (ForEachMaster), so fn must be
// safe for concurrent use.
func (s *Store) eachKey(ctx context.Context, fn func(c *redis.Client, key string) error) error {
	scan := func(c *redis.Client) error {
		iter := c.Scan(ctx, 0, s.k.p+"{*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := fn(c, iter.Val()); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	switch c := s.direct.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(c) })
	case *redis.Client:
		return scan(c)
	}
	return errors.New("unsupported Redis client")
}
