package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
)

// lockedBuffer is a log sink tests read while components write to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Sync() error { return nil }

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecretsNeverLeak runs a full link with a card number and a password,
// refreshes its connection and reads its secrets once, then looks for every
// secret in every log line (debug level, every component), every NATS
// message (core subscription to ">" and the contents of every JetStream
// stream), every webhook, every API response but the one explicit secret
// read, and everything in Redis.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	enc := zap.NewProductionEncoderConfig()
	log := zap.New(zapcore.NewTee(
		zapcore.NewCore(zapcore.NewJSONEncoder(enc), logs, zap.DebugLevel),
		zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()))
	gate := &refreshGate{}
	s := teststack.NewStack(t, connStackOptions(gate, teststack.StackOptions{Logger: log}))
	ctx := context.Background()

	// Every message the NATS server carries from here on.
	spy, err := nats.Connect(s.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(spy.Close)
	var natsMu sync.Mutex
	var natsMsgs []string
	if _, err := spy.Subscribe(">", func(m *nats.Msg) {
		natsMu.Lock()
		natsMsgs = append(natsMsgs, fmt.Sprintf("%s %v %s", m.Subject, m.Header, m.Data))
		natsMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	hooks, hookURL := newHookLog(t, s.WebhookSecret)

	const cardNumber, cvv = "4242424242424242", "7291"
	var responses []string
	do := func(method, path, key string, body any) *teststack.Response {
		t.Helper()
		r := s.Do(t, method, path, key, body)
		responses = append(responses, method+" "+path+" "+string(r.Body))
		return r
	}

	card := goodCard()
	card["cardNumber"], card["cvv"] = cardNumber, cvv
	r := do(http.MethodPost, "/v1/links", s.APIKey, map[string]any{"integrationId": sandbox.TMobile, "webhookUrl": hookURL,
		"operations": []any{
			map[string]any{"resource": "paymentMethod", "action": "write", "arguments": card},
			map[string]any{"resource": "paymentMethod", "action": "read"},
		}})
	var l struct {
		LinkID    string `json:"linkId"`
		ClaimCode string `json:"claimCode"`
	}
	r.JSON(t, &l)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	do(http.MethodPost, "/v1/links/"+l.LinkID+"/claim", "", map[string]any{"claimCode": l.ClaimCode,
		"credentials": map[string]string{"username": sandbox.UserGood, "password": sandbox.PasswordGood}})
	var done struct {
		Status       string `json:"status"`
		ConnectionID string `json:"connectionId"`
	}
	testenv.Eventually(t, 15*time.Second, "the link to succeed", func() bool {
		do(http.MethodGet, "/v1/links/"+l.LinkID, s.APIKey, nil).JSON(t, &done)
		return done.Status == "succeeded"
	})
	testenv.Eventually(t, 10*time.Second, "the link.succeeded webhook", func() bool { return hooks.find(linkflow.EventLinkSucceeded) != nil })
	id := done.ConnectionID
	do(http.MethodGet, "/v1/links/"+l.LinkID+"/session?code="+l.ClaimCode, "", nil)
	do(http.MethodGet, "/v1/links", s.APIKey, nil)
	do(http.MethodGet, "/v1/links/"+l.LinkID+"/deliveries", s.APIKey, nil)
	do(http.MethodGet, "/v1/events", s.APIKey, nil)
	do(http.MethodGet, "/v1/connections/"+id+"?refresh_policy=force", s.APIKey, nil)
	do(http.MethodGet, "/v1/connections", s.APIKey, nil)
	do(http.MethodPatch, "/v1/connections/"+id, s.APIKey, map[string]any{"displayName": "Phone"})

	// The one explicit secret read; its body is the only place secrets may be.
	secret, _ := getConn(t, s, s.APIKey, id, "include_secrets=true&refresh_policy=none", http.StatusOK)
	creds := secret.creds()
	if creds.AccessToken == "" || creds.RefreshToken == "" {
		t.Fatalf("secret read: %+v", secret.Credentials)
	}
	do(http.MethodGet, "/v1/connections/"+id, s.APIKey, nil)
	do(http.MethodGet, "/v1/connections/"+id+"/secret-reads", s.APIKey, nil)
	do(http.MethodGet, "/v1/events", s.APIKey, nil)

	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, name := range []string{outbox.StreamLinks, outbox.StreamEvents, outbox.StreamDLQ, outbox.StreamAdvisories} {
		st, err := s.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted
			}
			stored = append(stored, fmt.Sprintf("%s %v %s", m.Subject, m.Header, m.Data))
		}
	}

	secrets := map[string]string{
		"card number":    cardNumber,
		"CVV":            `"` + cvv + `"`, // quoted: four digits alone turn up in timestamps
		"password":       sandbox.PasswordGood,
		"access token":   creds.AccessToken,
		"refresh token":  creds.RefreshToken,
		"API key":        s.APIKey,
		"webhook secret": strings.TrimPrefix(s.WebhookSecret, "whsec_"),
	}
	natsMu.Lock()
	core := strings.Join(natsMsgs, "\n")
	natsMu.Unlock()
	hooks.mu.Lock()
	var hookBodies []string
	for _, b := range hooks.bodies {
		hookBodies = append(hookBodies, string(b))
	}
	hooks.mu.Unlock()
	places := map[string]string{
		"logs":              logs.String(),
		"NATS messages":     core,
		"JetStream streams": strings.Join(stored, "\n"),
		"webhook bodies":    strings.Join(hookBodies, "\n"),
		"API responses":     strings.Join(responses, "\n"),
	}
	// At rest: sealed, or hashed (API keys), never as given.
	var rest []string
	for _, text := range testenv.RedisContents(ctx, t, s.Redis, s.RedisEnv.Prefix+"*") {
		rest = append(rest, text)
	}
	places["Redis"] = strings.Join(rest, "\n")
	// The links stream drops what was acknowledged, so the streams
	// may hold little; the core subscription saw every publish.
	if !strings.Contains(places["logs"], l.LinkID) || !strings.Contains(core, outbox.SubjectClaimed) ||
		!strings.Contains(core, outbox.EventSubject(s.OrgID, linkflow.EventLinkSucceeded)) || len(hookBodies) < 1 ||
		!strings.Contains(places["Redis"], l.LinkID) {
		t.Fatal("the capture saw nothing: the scan would prove nothing")
	}
	for where, text := range places {
		for what, value := range secrets {
			if i := strings.Index(text, value); i >= 0 {
				lo, hi := max(0, i-200), min(len(text), i+len(value)+50)
				t.Errorf("the %s is in the %s: ...%s...", what, where, text[lo:hi])
			}
		}
	}
}
