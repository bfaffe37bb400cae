package webhooks

import (
	"fmt"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// signer signs webhooks with the official Standard Webhooks library, keeping
// each secret's decoded key so a delivery does not decode base64 again.
type signer struct {
	mu    sync.Mutex
	hooks map[string]*standardwebhooks.Webhook
}

// maxCachedSecrets bounds the cache; past it the cache starts over (secrets
// of rotated-away organizations are not kept forever).
const maxCachedSecrets = 10000

func newSigner() *signer { return &signer{hooks: map[string]*standardwebhooks.Webhook{}} }

func (s *signer) webhook(secret string) (*standardwebhooks.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wh, ok := s.hooks[secret]; ok {
		return wh, nil
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		// The library's error does not contain the secret.
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	if len(s.hooks) >= maxCachedSecrets {
		clear(s.hooks)
	}
	s.hooks[secret] = wh
	return wh, nil
}

// sign returns the webhook-signature header: one "v1,<base64>" signature per
// secret (the current one first, then the previous one during rotation),
// separated by spaces.
func (s *signer) sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", fmt.Errorf("no webhook secret")
	}
	sigs := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		wh, err := s.webhook(sec)
		if err != nil {
			return "", err
		}
		sig, err := wh.Sign(msgID, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Sign returns the webhook-signature header value for body sent as msgID at
// ts, signed with each secret in turn (space-separated). It is exported for
// tools and tests; the dispatcher uses the same code.
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	return newSigner().sign(secrets, msgID, ts, body)
}
