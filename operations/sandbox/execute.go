package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/linkflow/linkflow/operations"
)

func (s *Sandbox) execute(ctx context.Context, integration string, req operations.ExecuteRequest) (json.RawMessage, error) {
	now := s.now()
	sess, ok := s.sessions.get(req.SessionID, now)
	if !ok || sess.integration != integration {
		return nil, operations.Unavailable("the session expired or does not exist, start again")
	}
	sess.mu.Lock()
	pending := sess.challenge != nil
	if !pending {
		s.touch(ctx, sess, now)
	}
	sess.mu.Unlock()
	if pending {
		return nil, operations.Rejected("the sign-in is waiting for a challenge's answer")
	}
	if !supports(integration, req.Resource, req.Action) {
		return nil, operations.Rejected(fmt.Sprintf("%s does not support %s %s", integration, req.Action, req.Resource))
	}
	delay := s.cfg.Latency
	if sess.username == UserSlow {
		delay += s.cfg.SlowDelay
	}
	if err := wait(ctx, delay); err != nil {
		return nil, err
	}
	a := newAccount(integration, sess.username)
	switch req.Resource + "." + req.Action {
	case ResourcePaymentMethod + "." + ActionRead:
		return json.Marshal(paymentMethods(a, sess.writtenCards(), now))
	case ResourcePaymentMethod + "." + ActionWrite:
		return s.addCard(ctx, sess, a, req, now)
	case ResourceBillingStatement + "." + ActionRead:
		var args struct {
			Months *int `json:"months"`
		}
		if err := decodeArgs(req.Arguments, &args); err != nil {
			return nil, err
		}
		months := DefaultStatementMonths
		if args.Months != nil {
			months = *args.Months
		}
		if months < 1 || months > 24 {
			return nil, operations.Rejected("months must be between 1 and 24")
		}
		return generated.json(memoKey{seed: a.seed, what: "statements", day: now.UTC().Format("2006-01-02"), n: months},
			func() any { return a.statements(now, months) })
	case ResourceAccountProfile + "." + ActionRead:
		if err := decodeArgs(req.Arguments, &struct{}{}); err != nil {
			return nil, err
		}
		return generated.json(memoKey{seed: a.seed, what: "profile"}, func() any { return a.profile() })
	case ResourceOrderHistory + "." + ActionRead:
		var args struct {
			Since string `json:"since"`
			Limit *int   `json:"limit"`
		}
		if err := decodeArgs(req.Arguments, &args); err != nil {
			return nil, err
		}
		limit := DefaultOrderLimit
		if args.Limit != nil {
			limit = *args.Limit
		}
		if limit < 1 || limit > 100 {
			return nil, operations.Rejected("limit must be between 1 and 100")
		}
		var since time.Time
		if args.Since != "" {
			t, err := time.Parse(time.DateOnly, args.Since)
			if err != nil {
				return nil, operations.Rejected("since must be a date, YYYY-MM-DD")
			}
			since = t
		}
		orders := a.orders(now, since, limit)
		if orders == nil {
			orders = []Order{}
		}
		return json.Marshal(orders)
	}
	return nil, operations.Rejected(fmt.Sprintf("%s does not support %s %s", integration, req.Action, req.Resource))
}

// decodeArgs reads an operation's arguments strictly. The API validated them
// against the action's schema already; this guards a provider reached by
// another path (the remote protocol) and never echoes a value.
func decodeArgs(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return operations.Rejected("the arguments do not match the action's schema")
	}
	return nil
}

// writtenResources are the resources writes change: a session loads their
// written items when its login completes, and reads them from there.
var writtenResources = []string{ResourcePaymentMethod}

// decodeCards decodes the cards writes added, as the store keeps them.
func decodeCards(items []json.RawMessage) ([]PaymentMethod, error) {
	out := make([]PaymentMethod, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &out[i]); err != nil {
			return nil, fmt.Errorf("sandbox read payment methods: %w", err)
		}
	}
	return out, nil
}

// paymentMethods returns the account's cards: those written, newest first
// and the newest the default, then the ones it always had.
func paymentMethods(a account, written []PaymentMethod, now time.Time) []PaymentMethod {
	base := a.baseCards(now)
	out := make([]PaymentMethod, 0, len(written)+len(base))
	for _, cards := range [][]PaymentMethod{written, base} {
		for _, pm := range cards {
			pm.IsDefault = len(out) == 0
			out = append(out, pm)
		}
	}
	return out
}

// CardArguments are the arguments of a payment method write.
type CardArguments struct {
	CardNumber     string `json:"cardNumber"`
	ExpirationDate string `json:"expirationDate"`
	CVV            string `json:"cvv"`
	NameOnCard     string `json:"nameOnCard"`
	BillingZip     string `json:"billingZip"`
}

var (
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
	zipRE    = regexp.MustCompile(`^[0-9]{5}(-[0-9]{4})?$`)
)

func (c CardArguments) check(now time.Time) error {
	switch {
	case len(c.CardNumber) < 13 || len(c.CardNumber) > 19 || !operations.LuhnValid(c.CardNumber):
		return operations.Rejected("cardNumber must be 13 to 19 digits and pass the Luhn check")
	case operations.CheckCardExpiry(c.ExpirationDate, now) != nil:
		return operations.Rejected("expirationDate must be MM/YY and not in the past")
	case len(c.CVV) < 3 || len(c.CVV) > 4 || !digitsRE.MatchString(c.CVV):
		return operations.Rejected("cvv must be 3 or 4 digits")
	case c.NameOnCard == "" || utf8.RuneCountInString(c.NameOnCard) > 100:
		return operations.Rejected("nameOnCard must be 1 to 100 characters")
	case !zipRE.MatchString(c.BillingZip):
		return operations.Rejected("billingZip must be 5 digits or ZIP+4")
	}
	return nil
}

// addCard saves a card once per idempotency key and makes it the default,
// also in the session's view of the account.
func (s *Sandbox) addCard(ctx context.Context, sess *session, a account, req operations.ExecuteRequest, now time.Time) (json.RawMessage, error) {
	if req.IdempotencyKey == "" {
		return nil, operations.Rejected("a write needs an idempotency key")
	}
	var args CardArguments
	if err := decodeArgs(req.Arguments, &args); err != nil {
		return nil, err
	}
	if err := args.check(now); err != nil {
		return nil, err
	}
	if args.CardNumber == CardDeclined {
		return nil, operations.Declined("the card was declined by its issuer")
	}
	pm := PaymentMethod{
		ID:             "pm_" + tokenHash(sess.org + "\x00" + a.integration + "\x00" + a.username + "\x00" + req.IdempotencyKey)[:16],
		Type:           "card",
		Brand:          CardBrand(args.CardNumber),
		Last4:          last4(args.CardNumber),
		ExpirationDate: args.ExpirationDate,
		IsDefault:      true,
		AddedAt:        now.UTC().Truncate(time.Millisecond),
	}
	result, err := json.Marshal(pm)
	if err != nil {
		return nil, err
	}
	first, replayed, err := s.store.ApplySandboxWrite(ctx, sess.account(), WriteRecord{
		IdempotencyKey: req.IdempotencyKey, Resource: req.Resource, Action: req.Action,
		Result: result, At: pm.AddedAt,
	})
	if err != nil {
		return nil, fmt.Errorf("sandbox write payment method: %w", err)
	}
	if replayed {
		// The first write's card, which another session may have made
		// after this one's login.
		if err := json.Unmarshal(first.Result, &pm); err != nil {
			return nil, fmt.Errorf("sandbox write payment method: %w", err)
		}
	}
	sess.remember(pm)
	return first.Result, nil
}
