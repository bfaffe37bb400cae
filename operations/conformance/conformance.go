package conformance

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/linkflow/linkflow"

	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
)

// OrgID is the organization the suite's logins are made for.
const OrgID = "org_conformance"

// Harness is what Run tests.
type Harness struct {
	// Registry holds the integrations under test and their providers.
	// Required.
	Registry *operations.Registry
	// Integrations lists the integrations to test. Default: those of the
	// sandbox catalog that Registry has; at least one must be there.
	Integrations []string
	// Sandbox is the sandbox that finally serves the requests, whose accounts
	// the suite inspects (write logs, grants). Its integration ids must be
	// the registry's. Nil: checks that need to look inside are left out.
	Sandbox *sandbox.Sandbox
	// SlowDelay is how long the provider takes for each of user_slow's
	// operations. Default 2s.
	SlowDelay time.Duration
	// Now is the provider's clock. Default time.Now.
	Now func() time.Time
}

// Run runs the suite against every integration of h, in parallel subtests.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Registry == nil {
		t.Fatal("conformance: Harness.Registry is required")
	}
	h.SlowDelay = cmp.Or(h.SlowDelay, 2*time.Second)
	if h.Now == nil {
		h.Now = time.Now
	}
	if len(h.Integrations) == 0 {
		for _, id := range sandbox.IntegrationIDs() {
			if _, ok := h.Registry.Integration(id); ok {
				h.Integrations = append(h.Integrations, id)
			}
		}
	}
	if len(h.Integrations) == 0 {
		t.Fatal("conformance: the registry has none of the sandbox's integrations")
	}
	for _, id := range h.Integrations {
		p, ok := h.Registry.Provider(id)
		if !ok {
			t.Fatalf("conformance: integration %s is not registered", id)
		}
		s := &suite{h: h, id: id, p: p}
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			for _, tc := range s.cases() {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t)
				})
			}
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T)
}

// suite is the suite for one integration.
type suite struct {
	h  Harness
	id string
	p  operations.Provider
}

func (s *suite) cases() []testCase {
	return []testCase{
		{"Catalog", s.testCatalog},
		{"LoginGood", s.testLoginGood},
		{"LoginBadPassword", s.testLoginBadPassword},
		{"LoginLocked", s.testLoginLocked},
		{"ChallengeRight", s.testChallengeRight},
		{"ChallengeWrongThenRight", s.testChallengeWrongThenRight},
		{"FlakyFirstAttempt", s.testFlaky},
		{"Reads", s.testReads},
		{"ReadArguments", s.testReadArguments},
		{"ReadsAreDeterministic", s.testDeterministic},
		{"WriteThenRead", s.testWriteThenRead},
		{"IdempotentWrite", s.testIdempotentWrite},
		{"ConcurrentWritesSameKey", s.testConcurrentWrites},
		{"DeclinedCard", s.testDeclined},
		{"RejectsBadArguments", s.testRejects},
		{"RefreshAndRevoke", s.testRefreshRevoke},
		{"Close", s.testClose},
		{"SlowUser", s.testSlow},
		{"CancelInterruptsDelay", s.testCancel},
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// uniqueUser returns a username nobody else uses, so that each test has an
// account of its own.
func uniqueUser(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "conformance_" + hex.EncodeToString(b)
}

// login logs username in and closes the session when the test ends.
func (s *suite) login(t *testing.T, username string) *operations.LoginResult {
	t.Helper()
	ctx := ctxFor(t)
	res, err := s.p.Login(ctx, operations.LoginRequest{OrgID: OrgID,
		Integration: s.id, LinkID: "link_conformance", Attempt: 1, Username: username, Password: sandbox.PasswordGood,
	})
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	if res.SessionID == "" {
		t.Fatalf("login %s: no session id", username)
	}
	t.Cleanup(func() {
		if err := s.p.Close(context.Background(), res.SessionID); err != nil {
			t.Errorf("close session: %v", err)
		}
	})
	return res
}

func (s *suite) exec(ctx context.Context, session, resource, action, args, key string) (json.RawMessage, error) {
	var raw json.RawMessage
	if args != "" {
		raw = json.RawMessage(args)
	}
	return s.p.Execute(ctx, operations.ExecuteRequest{
		Integration: s.id, SessionID: session, Resource: resource, Action: action,
		Arguments: raw, IdempotencyKey: key,
	})
}

// mustExec runs an operation that must succeed and decodes its result.
func (s *suite) mustExec(t *testing.T, session, resource, action, args, key string, into any) json.RawMessage {
	t.Helper()
	out, err := s.exec(ctxFor(t), session, resource, action, args, key)
	if err != nil {
		t.Fatalf("%s %s: %v", action, resource, err)
	}
	if into != nil {
		if err := json.Unmarshal(out, into); err != nil {
			t.Fatalf("%s %s: result %s: %v", action, resource, out, err)
		}
	}
	return out
}

// wantError checks that err is a typed provider error with code, transient
// as the code says.
func wantError(t *testing.T, err error, code linkflow.FailureCode) *operations.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var pe *operations.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got untyped error %v, want %s", err, code)
	}
	if pe.Code != code {
		t.Fatalf("got %s (%s), want %s", pe.Code, pe.Message, code)
	}
	if want := operations.NewError(code, "").Transient; pe.Transient != want {
		t.Fatalf("%s: transient = %v, want %v", code, pe.Transient, want)
	}
	return pe
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// futureExpiry is a card expiry three years ahead.
func (s *suite) futureExpiry() string {
	return fmt.Sprintf("%02d/%02d", int(s.h.Now().Month()), (s.h.Now().Year()+3)%100)
}

func (s *suite) cardArgs(number string) string {
	b, _ := json.Marshal(map[string]string{
		"cardNumber": number, "expirationDate": s.futureExpiry(), "cvv": "123",
		"nameOnCard": "Conformance Test", "billingZip": "10001",
	})
	return string(b)
}

// writeLogKeys returns the idempotency keys of an account's write log, or
// nil and false without a sandbox to look into.
func (s *suite) writeLogKeys(t *testing.T, username string) ([]string, bool) {
	t.Helper()
	if s.h.Sandbox == nil {
		return nil, false
	}
	acct, err := s.h.Sandbox.Account(ctxFor(t), OrgID, s.id, username)
	if err != nil {
		t.Fatalf("account: %v", err)
	}
	var keys []string
	for _, w := range acct.WriteLog {
		keys = append(keys, w.IdempotencyKey)
	}
	return keys, true
}

func (s *suite) hasAction(resource, action string) bool {
	_, ok := s.h.Registry.Action(s.id, resource, action)
	return ok
}

func (s *suite) readActions() []string {
	in, _ := s.h.Registry.Integration(s.id)
	var out []string
	for _, r := range in.Resources {
		for _, a := range r.Actions {
			if a.Name == sandbox.ActionRead {
				out = append(out, r.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}
