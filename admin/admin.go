// Package admin is what an operator does to a linkflow deployment besides
// running it: organizations and their API keys, users, the encryption keys
// that seal secrets at rest; watching its events as they happen (Listen);
// and watching and repairing it: its status (package monitor computes it)
// and its dead letters (ops.go). cmd/linkflow parses the flags; each
// function here does the work and writes what the operator needs to see to
// Out, secrets once.
package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/embedded"
	"github.com/linkflow/linkflow/internal/redact"
	"github.com/linkflow/linkflow/store"
)

// Admin administers the deployment whose state Store holds.
type Admin struct {
	Store *store.Store
	Out   io.Writer
	// DevNATSURL is the NATS of the linkflow dev whose data directory Open
	// was given, if any.
	DevNATSURL string
}

// MinPasswordLength is the least a user's password may have.
const MinPasswordLength = 8

// CreateOrg creates an organization with a first API key (all scopes) and
// a webhook secret, and shows both.
func (a *Admin) CreateOrg(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("an organization needs a name")
	}
	org, err := a.Store.CreateOrg(ctx, "", name, "")
	if err != nil {
		return err
	}
	key, rec, err := a.Store.CreateAPIKey(ctx, org.ID, "default", "", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Out, "organization    %s\napi key id      %s\napi key         %s\nwebhook secret  %s\n\nThe API key and webhook secret are shown once; store them now.\n",
		org.ID, rec.ID, key, org.WebhookSecrets[0])
	return nil
}

// UpdateOrg changes, in one step, the custom URL schemes ("myapp") an
// organization's return URLs may use besides https, and the web origins
// ("https://app.example.com") that may embed its hosted pages with the web
// drop-in and receive its messages; nil leaves one as it is, an empty list
// clears it. A value refused leaves both as they were.
func (a *Admin) UpdateOrg(ctx context.Context, org string, schemes, origins *[]string) error {
	if err := a.Store.UpdateOrg(ctx, org, linkflow.OrgUpdate{AppSchemes: schemes, AllowedOrigins: origins}); errors.Is(err, linkflow.ErrNotFound) {
		return fmt.Errorf("no organization %s", org)
	} else if err != nil {
		return fmt.Errorf("update %s: %w", org, err)
	}
	o, err := a.Store.Org(ctx, org)
	if err != nil {
		return fmt.Errorf("%s was updated, but reading it back failed: %w", org, err)
	}
	if schemes != nil {
		fmt.Fprintf(a.Out, "organization %s: app schemes %q\n", org, o.AppSchemes)
	}
	if origins != nil {
		fmt.Fprintf(a.Out, "organization %s: allowed origins %q\n", org, o.AllowedOrigins)
		for _, origin := range o.AllowedOrigins {
			if linkflow.DevOrigin(origin) {
				fmt.Fprintf(a.Out, "note: %s is honoured only by an API running in dev mode\n", origin)
			}
		}
	}
	return nil
}

// RotateWebhookSecret gives an organization a new webhook secret; the old
// one keeps signing too for overlap.
func (a *Admin) RotateWebhookSecret(ctx context.Context, org string, overlap time.Duration) error {
	// Whether this process opens the secret it replaces: one sealed with a
	// key it is not given (or damaged) is replaced all the same.
	_, openErr := a.Store.Org(ctx, org)
	if openErr != nil && !errors.Is(openErr, linkflow.ErrUnsealable) {
		return fmt.Errorf("rotate the webhook secret of %s: %w", org, openErr)
	}
	secret := store.NewWebhookSecret()
	if err := a.Store.UpdateOrg(ctx, org, linkflow.OrgUpdate{WebhookSecret: secret, PreviousSecretFor: max(overlap, time.Millisecond)}); err != nil {
		return fmt.Errorf("rotate the webhook secret of %s: %w", org, err)
	}
	fmt.Fprintf(a.Out, "webhook secret  %s\n\n", secret)
	if openErr != nil {
		fmt.Fprintf(a.Out, "Within seconds webhooks are signed with this secret. This process could not open the old one "+
			"(%v): dispatchers given its key sign with it alongside, for %s; others do not.\n", openErr, overlap)
		return nil
	}
	fmt.Fprintf(a.Out, "Within seconds webhooks are signed with this secret and, for %s, also with the old one.\n", overlap)
	return nil
}

// CreateAPIKey creates an API key of org with scopes (none: all) and shows
// it once.
func (a *Admin) CreateAPIKey(ctx context.Context, org, name string, scopes []string) error {
	key, rec, err := a.Store.CreateAPIKey(ctx, org, name, "", scopes)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Out, "api key id  %s\napi key     %s\nscopes      %s\n\nThe key is shown once; store it now.\n", rec.ID, key, strings.Join(rec.Scopes, " "))
	return nil
}

// RevokeAPIKey revokes an API key by id; org may be empty.
func (a *Admin) RevokeAPIKey(ctx context.Context, org, keyID string) error {
	if err := a.Store.RevokeAPIKey(ctx, org, keyID); err != nil {
		return fmt.Errorf("revoke %s: %w", keyID, err)
	}
	fmt.Fprintf(a.Out, "revoked %s\n", keyID)
	return nil
}

// RotateData re-seals every secret with the first encryption key.
func (a *Admin) RotateData(ctx context.Context) error {
	sealed, err := a.Store.RotateData(ctx, true)
	fmt.Fprintf(a.Out, "re-sealed %d values with the first key\n", sealed.Resealed)
	if !sealed.Complete {
		// Counts of a scan that stopped would make a key it did not reach
		// look safe to retire.
		return fmt.Errorf("the scan of Redis did not finish, so which keys still seal values is not known (run it again): %w", err)
	}
	for id, n := range sealed.ByKey {
		fmt.Fprintf(a.Out, "key %s seals %d values\n", id, n)
	}
	if err != nil {
		return fmt.Errorf("some values could not be re-sealed (run it again after fixing the keys): %w", err)
	}
	return nil
}

// CreateUser creates a user who acts for orgs with password, or changes an
// existing one (its access tokens stop working).
func (a *Admin) CreateUser(ctx context.Context, email string, orgs []string, password string) error {
	if len(password) < MinPasswordLength {
		return fmt.Errorf("the password must have at least %d characters", MinPasswordLength)
	}
	if len(orgs) == 0 {
		return errors.New("a user acts for at least one organization: give --org")
	}
	for _, org := range orgs {
		if _, err := a.Store.Org(ctx, org); err != nil {
			if errors.Is(err, linkflow.ErrNotFound) {
				return fmt.Errorf("organization %s does not exist (nothing changed)", org)
			}
			return err
		}
	}
	before, err := a.Store.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, linkflow.ErrNotFound) {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	if err := a.Store.CreateUser(ctx, linkflow.User{Email: email, PasswordHash: string(hash), OrgIDs: orgs}); err != nil {
		return err
	}
	if before == nil {
		fmt.Fprintf(a.Out, "user %s created, of %s\n", email, strings.Join(orgs, ", "))
		return nil
	}
	fmt.Fprintf(a.Out, "user %s changed: a new password; of %s (was %s); the access tokens issued before stop working\n",
		email, strings.Join(orgs, ", "), strings.Join(before.OrgIDs, ", "))
	return nil
}

// RevokeUserTokens makes every access token the user holds stop working.
func (a *Admin) RevokeUserTokens(ctx context.Context, email string) error {
	if err := a.Store.RevokeUserTokens(ctx, email); err != nil {
		return fmt.Errorf("revoke the tokens of %s: %w", email, err)
	}
	fmt.Fprintf(a.Out, "revoked every access token of %s\n", email)
	return nil
}

// GenerateKey shows a new encryption key for LINKFLOW_ENCRYPTION_KEYS.
func (a *Admin) GenerateKey() {
	fmt.Fprintln(a.Out, store.GenerateKey("k"+linkflow.NewLeaseToken()[:6]))
}

// OpenConfig says where an admin command's deployment keeps its state.
type OpenConfig struct {
	// RedisURL, RedisCluster and RedisPrefix: store.DialRedis and
	// store.Config.Prefix.
	RedisURL     string
	RedisCluster bool
	RedisPrefix  string
	// EncryptionKeys open and seal secrets (store.ParseKeyring).
	EncryptionKeys string
	// DataDir, when set, is a linkflow dev's data directory: its Redis,
	// encryption key (unless EncryptionKeys) and NATS. A RedisURLGiven that
	// is not dev's takes nothing from it: the keys and NATS of dev are not
	// another deployment's.
	DataDir       string
	RedisURLGiven bool
	// Reading is for the commands that read what they can and say what
	// they could not (status, dlq): a Redis that does not answer is not an
	// error here, and the encryption keys are optional (those commands
	// open no secret).
	Reading bool
	// Out receives what the commands print.
	Out io.Writer
}

// Open connects to the deployment's Redis (administration needs no NATS)
// and returns an Admin of it, and what closes the connection.
func Open(ctx context.Context, c OpenConfig) (*Admin, func(), error) {
	devNATS, otherRedis := "", false
	if c.DataDir != "" {
		st, err := embedded.ReadDevState(c.DataDir)
		if err != nil {
			return nil, nil, err
		}
		// A Redis other than dev's is another deployment: dev's key and
		// NATS are not its own, so the data directory gives it nothing.
		otherRedis = c.RedisURLGiven && c.RedisURL != st.RedisURL
		if !otherRedis {
			c.RedisURL = st.RedisURL
			c.EncryptionKeys = cmp.Or(c.EncryptionKeys, st.EncryptionKey)
			devNATS = st.NATSURL
		}
	}
	if c.EncryptionKeys == "" && c.Reading {
		c.EncryptionKeys = store.GenerateKey("unused") // opens nothing stored
	}
	switch {
	case c.EncryptionKeys == "" && otherRedis:
		return nil, nil, errors.New("--encryption-keys (LINKFLOW_ENCRYPTION_KEYS) is required: --redis-url is not the Redis of the linkflow dev of --data-dir (LINKFLOW_DATA_DIR), whose key is dev's only")
	case c.EncryptionKeys == "":
		return nil, nil, errors.New("--encryption-keys (LINKFLOW_ENCRYPTION_KEYS) is required; against linkflow dev, give its --data-dir (LINKFLOW_DATA_DIR) instead")
	}
	kr, err := store.ParseKeyring(c.EncryptionKeys)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := store.DialRedis(c.RedisURL, c.RedisCluster)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr, Prefix: c.RedisPrefix})
	if err == nil && !c.Reading {
		err = st.Ping(ctx)
		if err != nil {
			err = fmt.Errorf("redis at %s: %w", redact.URLs(c.RedisURL), err)
			if c.DataDir != "" && !otherRedis {
				err = fmt.Errorf("%w (is the linkflow dev of %s running?)", err, c.DataDir)
			}
		}
	}
	if err != nil {
		_ = rdb.Close()
		return nil, nil, err
	}
	return &Admin{Store: st, Out: c.Out, DevNATSURL: devNATS}, func() { _ = rdb.Close() }, nil
}
