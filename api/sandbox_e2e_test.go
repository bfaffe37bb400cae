package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/workflow"
)

// writeCard writes a card with good details but the number.
func writeCard(number string) map[string]any {
	c := goodCard()
	c["cardNumber"] = number
	return writeOp(c)
}

// Every magic credential of the sandbox, end to end through the HTTP API:
// create, claim, (answer), and the outcome GET /v1/links shows.
func TestSandboxMagicCredentialsOverHTTP(t *testing.T) {
	t.Parallel()
	s := teststack.NewStack(t, teststack.StackOptions{
		Sandbox: func(c *sandbox.Config) { c.SlowDelay = 150 * time.Millisecond },
		Worker:  func(c *workflow.Config) { c.RetryBase, c.RetryMax = 20*time.Millisecond, 100*time.Millisecond },
		API: func(c *api.Config) {
			c.KeyLimit, c.ClientLimit, c.ClaimGuessLimit, c.LoginFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit, api.NoLimit
		},
	})
	for _, tc := range []struct {
		name, user, pass string
		ops              []any
		status, code     string
		opIndex          float64
	}{
		{"good", sandbox.UserGood, sandbox.PasswordGood, []any{readOp(), writeCard("4111111111111111")}, "succeeded", "", -1},
		// Asked again twice (TestPasswordTries), wrong each time.
		{"wrong password", sandbox.UserGood, "nope", []any{readOp()}, "failed", "INVALID_CREDENTIALS", -1},
		{"locked", sandbox.UserLocked, sandbox.PasswordGood, []any{readOp()}, "failed", "ACCOUNT_LOCKED", -1},
		{"flaky: a transient error, then success", sandbox.UserFlaky, sandbox.PasswordGood, []any{readOp()}, "succeeded", "", -1},
		{"slow", sandbox.UserSlow, sandbox.PasswordGood, []any{readOp(), readOp()}, "succeeded", "", -1},
		{"declined card", "declined_card", sandbox.PasswordGood, []any{readOp(), writeCard(sandbox.CardDeclined)}, "failed", "DECLINED", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLink(t, s, s.APIKey, map[string]any{"operations": tc.ops})
			wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), tc.user, tc.pass), http.StatusAccepted)
			for after := ""; tc.pass != sandbox.PasswordGood; {
				v := waitSession(t, s, l, after)
				if v.Challenge == nil || v.Challenge.Type != "credentials" {
					break
				}
				answer(t, s, l, v.Challenge.ID, tc.pass)
				after = v.Challenge.ID
			}
			got := waitLink(t, s, s.APIKey, l.str("linkId"), "succeeded", "failed")
			if got.str("status") != tc.status {
				t.Fatalf("status %s (%v), want %s", got.str("status"), got["error"], tc.status)
			}
			if tc.code != "" {
				e, _ := got["error"].(map[string]any)
				if e["code"] != tc.code {
					t.Fatalf("error %v, want code %s", e, tc.code)
				}
				if idx, ok := e["operationIndex"].(float64); (tc.opIndex >= 0) != ok || (ok && idx != tc.opIndex) {
					t.Fatalf("operationIndex %v, want %v", e["operationIndex"], tc.opIndex)
				}
			} else if got["result"] == nil {
				t.Fatal("a succeeded link without its result")
			}
		})
	}
	t.Run("mfa", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		id, code := l.str("linkId"), l.str("claimCode")
		wantStatus(t, claimLink(t, s, id, code, sandbox.UserMFA, sandbox.PasswordGood), http.StatusAccepted)
		waitLink(t, s, s.APIKey, id, "awaiting_input")
		var sess sessionJSON
		s.Do(t, http.MethodGet, "/v1/links/"+id+"/session?code="+code, "", nil).JSON(t, &sess)
		if sess.Challenge == nil || sess.Challenge.Type != "otp" {
			t.Fatalf("session while awaiting input: %+v", sess)
		}
		r := s.Do(t, http.MethodPost, "/v1/links/"+id+"/input", "",
			map[string]any{"claimCode": code, "challengeId": sess.Challenge.ID, "response": sandbox.OTPCode})
		wantStatus(t, r, http.StatusAccepted)
		if got := waitLink(t, s, s.APIKey, id, "succeeded", "failed"); got.str("status") != "succeeded" {
			t.Fatalf("after the OTP: %v", got)
		}
	})
	t.Run("the sandbox account shows the write and its idempotency key", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"operations": []any{writeCard("5555555555554444")}})
		wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "writer", sandbox.PasswordGood), http.StatusAccepted)
		waitLink(t, s, s.APIKey, l.str("linkId"), "succeeded")
		var acct struct {
			WriteLog []struct {
				IdempotencyKey string `json:"idempotencyKey"`
			} `json:"writeLog"`
		}
		r := s.Do(t, http.MethodGet, "/v1/sandbox/accounts/tmobile/writer", s.APIKey, nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &acct)
		if len(acct.WriteLog) != 1 || acct.WriteLog[0].IdempotencyKey != l.str("linkId")+":0" {
			t.Fatalf("write log: %s", r.Body)
		}
	})
}

// GET /v1/providers and link validation read the registry the worker
// executes from: an action added to it shows up in both at once.
func TestProvidersAndValidationShareTheRegistry(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	body := map[string]any{"integrationId": "tmobile", "operations": []any{map[string]any{"resource": "dataUsage", "action": "read",
		"arguments": map[string]any{"days": 7}}}}
	wantError(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, body), http.StatusBadRequest, "BAD_REQUEST")

	in, _ := s.Registry.Integration("tmobile")
	extended := *in
	extended.Resources = append(append([]operations.Resource{}, in.Resources...), operations.Resource{
		Name: "dataUsage", DisplayName: "Data usage", Actions: []operations.Action{{
			Name: "read", Description: "Read how much data you used", ResultKey: "usage", ResultDescription: "Daily usage",
			Arguments: json.RawMessage(`{"type":"object","properties":{"days":{"type":"integer","minimum":1,"maximum":30}},"additionalProperties":false}`),
		}}})
	if err := s.Registry.Register(extended); err != nil {
		t.Fatal(err)
	}
	var providers struct {
		Data []struct {
			ID        string
			Resources []struct{ Name string }
		}
	}
	s.Do(t, http.MethodGet, "/v1/providers", s.APIKey, nil).JSON(t, &providers)
	found := false
	for _, p := range providers.Data {
		for _, r := range p.Resources {
			found = found || (p.ID == "tmobile" && r.Name == "dataUsage")
		}
	}
	if !found {
		t.Fatal("GET /v1/providers does not show the new action")
	}
	wantStatus(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, body), http.StatusCreated)
	body["operations"] = []any{map[string]any{"resource": "dataUsage", "action": "read", "arguments": map[string]any{"days": 99}}}
	e := wantError(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, body), http.StatusBadRequest, "BAD_REQUEST")
	if len(e.Error.Issues) != 1 || e.Error.Issues[0].Path != "operations[0].arguments.days" {
		t.Fatalf("issues: %+v", e.Error.Issues)
	}
}
