package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
)

func claim(t *testing.T, s *teststack.Stack, l linkJSON, username, password string) {
	t.Helper()
	wantStatus(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/claim", "", map[string]any{
		"claimCode": l.str("claimCode"), "credentials": map[string]any{"username": username, "password": password}}), http.StatusAccepted)
}

// waitSession waits until the session is done with the step it was at:
// ended, or waiting for an answer to another challenge than after.
func waitSession(t *testing.T, s *teststack.Stack, l linkJSON, after string) sessionJSON {
	t.Helper()
	var v sessionJSON
	testenv.Eventually(t, 10*time.Second, "the session to move on", func() bool {
		r := s.Do(t, http.MethodGet, "/v1/links/"+l.str("linkId")+"/session?code="+l.str("claimCode"), "", nil)
		wantStatus(t, r, http.StatusOK)
		v = sessionJSON{}
		r.JSON(t, &v)
		return v.Status == "succeeded" || v.Status == "failed" || (v.Challenge != nil && v.Challenge.ID != after)
	})
	return v
}

func answer(t *testing.T, s *teststack.Stack, l linkJSON, challengeID, response string) {
	t.Helper()
	wantStatus(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/input", "", map[string]any{
		"claimCode": l.str("claimCode"), "challengeId": challengeID, "response": response}), http.StatusAccepted)
}

// A wrong password does not end the link: the session asks for it again (a
// credentials challenge), three passwords in all, and only then fails
// INVALID_CREDENTIALS. No operation runs before a login succeeded.
func TestPasswordTries(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)

	t.Run("the right one on the second try", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"operations": []any{readOp(), writeOp(goodCard())}})
		claim(t, s, l, "user_good", "typo")
		v := waitSession(t, s, l, "")
		if v.Status != "awaiting_input" || v.Challenge.Type != "credentials" || v.Challenge.AttemptsLeft != 2 ||
			!strings.Contains(v.Challenge.LastError, "Wrong username or password") {
			t.Fatalf("after a wrong password: %+v %+v", v, v.Challenge)
		}
		answer(t, s, l, v.Challenge.ID, "pass_good")
		if v = waitSession(t, s, l, v.Challenge.ID); v.Status != "succeeded" {
			t.Fatalf("after the right password: %+v", v)
		}
		if ops := fetchLink(t, s, s.APIKey, l.str("linkId"))["result"]; ops == nil {
			t.Fatal("no result")
		}
	})
	t.Run("three wrong passwords fail the link", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"operations": []any{writeOp(goodCard())}})
		claim(t, s, l, "user_good", "wrong-1")
		v := waitSession(t, s, l, "")
		answer(t, s, l, v.Challenge.ID, "wrong-2")
		v = waitSession(t, s, l, v.Challenge.ID)
		if v.Challenge == nil || v.Challenge.AttemptsLeft != 1 {
			t.Fatalf("second try: %+v", v)
		}
		answer(t, s, l, v.Challenge.ID, "wrong-3")
		v = waitSession(t, s, l, v.Challenge.ID)
		if v.Status != "failed" || v.Error == nil || v.Error.Code != "INVALID_CREDENTIALS" {
			t.Fatalf("after three wrong passwords: %+v", v)
		}
		// All or nothing: the write never ran.
		acct := s.Do(t, http.MethodGet, "/v1/sandbox/accounts/tmobile/user_good", s.APIKey, nil)
		if acct.StatusCode == http.StatusOK && strings.Contains(string(acct.Body), l.str("linkId")) {
			t.Fatalf("an operation ran without a login: %s", acct.Body)
		}
	})
}

// A debug link's session is traced, step by step, with timings, attempts,
// codes and the provider's request ids; never a password, an answer or an
// argument.
func TestDebugTrace(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	card := goodCard()
	l := newLink(t, s, s.APIKey, map[string]any{"debug": true, "operations": []any{readOp(), writeOp(card)}})
	id := l.str("linkId")
	claim(t, s, l, "user_mfa", "wrong-password")
	v := waitSession(t, s, l, "")
	answer(t, s, l, v.Challenge.ID, "pass_good")
	v = waitSession(t, s, l, v.Challenge.ID)
	if v.Challenge == nil || v.Challenge.Type != "otp" {
		t.Fatalf("want the OTP challenge: %+v", v)
	}
	answer(t, s, l, v.Challenge.ID, "123456")
	if v = waitSession(t, s, l, v.Challenge.ID); v.Status != "succeeded" {
		t.Fatalf("%+v", v)
	}
	var trace struct {
		LinkID, Status string
		Data           []struct {
			At, DurationMs     int64
			Step, Outcome      string
			Attempt            int
			Code               string
			OperationIndex     *int
			Resource, Action   string
			ChallengeType      string
			ProviderRequestIDs []string `json:"providerRequestIds"`
		}
	}
	r := s.Do(t, http.MethodGet, "/v1/links/"+id+"/trace", s.APIKey, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &trace)
	var steps []string
	for _, e := range trace.Data {
		steps = append(steps, e.Step+":"+e.Outcome+":"+e.Code+":"+e.ChallengeType)
		if e.At == 0 || e.Attempt != 1 || e.DurationMs < 0 {
			t.Errorf("entry %+v", e)
		}
		if (e.Step == "login" || e.Step == "operation" || e.Step == "answer") && (len(e.ProviderRequestIDs) != 1 || !strings.HasPrefix(e.ProviderRequestIDs[0], "sbx_")) {
			t.Errorf("%s without the provider's request id: %+v", e.Step, e)
		}
	}
	want := []string{
		"session:started::", "login:failed:INVALID_CREDENTIALS:", "challenge:answered::credentials",
		"login:challenge::", "challenge:answered::otp", "answer:ok::otp",
		"operation:ok::", "operation:ok::", "finish:succeeded::",
	}
	if strings.Join(steps, " ") != strings.Join(want, " ") {
		t.Fatalf("trace steps\n got %v\nwant %v", steps, want)
	}
	if op := trace.Data[7]; op.OperationIndex == nil || *op.OperationIndex != 1 || op.Resource != "paymentMethod" || op.Action != "write" {
		t.Fatalf("operation entry %+v", op)
	}
	// The trace's own numbers (times, durations, counts) are not what is
	// looked for: a step that took 123 ms is not the card's CVV.
	body := regexp.MustCompile(`"(at|attempt|durationMs|operationIndex|retryInMs)":\d+`).ReplaceAll(r.Body, nil)
	for _, secret := range []string{"wrong-password", "pass_good", "123456", card["cardNumber"].(string), card["cvv"].(string), "John Doe"} {
		// As a whole word: a random provider request id (hex) may hold
		// the card's three digits.
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(secret) + `\b`).Match(body) {
			t.Fatalf("the trace holds %q: %s", secret, r.Body)
		}
	}

	// Only debug links are traced; another organization's link is not found.
	plain := newLink(t, s, s.APIKey, nil)
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/"+plain.str("linkId")+"/trace", s.APIKey, nil), http.StatusConflict, "CONFLICT_ERROR")
	_, otherKey, _ := s.NewOrg(t, "Other")
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/"+id+"/trace", otherKey, nil), http.StatusNotFound, "NOT_FOUND")
}

// The end user may decline: a pending link ends canceled and the customer
// gets link.canceled.
func TestDecline(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	l := newLink(t, s, s.APIKey, map[string]any{"returnUrl": "https://app.example.com/done"})
	r := s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/decline", "", map[string]any{"claimCode": "clm_wrong"})
	wantError(t, r, http.StatusNotFound, "NOT_FOUND")
	r = s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/decline", "", map[string]any{"claimCode": l.str("claimCode")})
	wantStatus(t, r, http.StatusOK)
	if r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("decline answers without CORS")
	}
	var v struct{ Status, RedirectURL string }
	r.JSON(t, &v)
	if v.Status != "canceled" || !strings.Contains(v.RedirectURL, "status=canceled") {
		t.Fatalf("declined: %s", r.Body)
	}
	testenv.Eventually(t, 10*time.Second, "the link.canceled event", func() bool {
		ev := s.Do(t, http.MethodGet, "/v1/events", s.APIKey, nil)
		return strings.Contains(string(ev.Body), `"type":"link.canceled"`) && strings.Contains(string(ev.Body), l.str("linkId"))
	})
	wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/decline", "", map[string]any{"claimCode": l.str("claimCode")}),
		http.StatusConflict, "CONFLICT_ERROR")
}
