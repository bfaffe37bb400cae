package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Errors say what to do: what the valid values are, where to look, what
// was wrong with the request as sent.
func TestErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	issue := func(t *testing.T, r []byte, path string) string {
		t.Helper()
		var e apiError
		if err := json.Unmarshal(r, &e); err != nil {
			t.Fatal(err)
		}
		for _, is := range e.Error.Issues {
			if is.Path == path {
				return is.Message
			}
		}
		t.Fatalf("no issue at %s: %s", path, r)
		return ""
	}
	create := func(t *testing.T, body map[string]any) []byte {
		t.Helper()
		r := s.Do(t, http.MethodPost, "/v1/links", s.APIKey, body)
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		return r.Body
	}

	t.Run("unknown integration names the known ones", func(t *testing.T) {
		t.Parallel()
		msg := issue(t, create(t, map[string]any{"integrationId": "tmobil", "operations": []any{readOp()}}), "integrationId")
		for _, w := range []string{`"tmobil"`, "tmobile", "verizon", "GET /v1/providers"} {
			if !strings.Contains(msg, w) {
				t.Errorf("message %q lacks %q", msg, w)
			}
		}
	})
	t.Run("unknown resource and action name the known ones", func(t *testing.T) {
		t.Parallel()
		msg := issue(t, create(t, map[string]any{"integrationId": "tmobile", "operations": []any{
			map[string]any{"resource": "paymentMethods", "action": "read"}}}), "operations[0].resource")
		if !strings.Contains(msg, "paymentMethod,") || !strings.Contains(msg, "GET /v1/providers") {
			t.Errorf("unknown resource: %q", msg)
		}
		msg = issue(t, create(t, map[string]any{"integrationId": "tmobile", "operations": []any{
			map[string]any{"resource": "paymentMethod", "action": "delete"}}}), "operations[0].action")
		if !strings.Contains(msg, "read, write") {
			t.Errorf("unknown action: %q", msg)
		}
	})
	t.Run("validation in plain words", func(t *testing.T) {
		t.Parallel()
		card := goodCard()
		card["nameOnCard"], card["cardNumber"] = "", "41111"
		body := create(t, map[string]any{"integrationId": "tmobile", "operations": []any{writeOp(card),
			map[string]any{"resource": "mobileBillingStatement", "action": "read", "arguments": map[string]any{"months": 0}}}})
		for path, want := range map[string]string{
			"operations[0].arguments.nameOnCard": "must not be empty",
			"operations[0].arguments.cardNumber": "must have at least 13 characters",
			"operations[1].arguments.months":     "must be at least 1",
		} {
			if got := issue(t, body, path); !strings.Contains(got, want) {
				t.Errorf("%s: %q, want %q", path, got, want)
			}
		}
		if strings.Contains(string(body), "minLength") || strings.Contains(string(body), "got 0") {
			t.Errorf("JSON Schema's words in: %s", body)
		}
	})
	t.Run("a format's issue never repeats the value", func(t *testing.T) {
		t.Parallel()
		card := goodCard()
		card["cardNumber"], card["expirationDate"] = "4111111111111112", "13/29"
		body := create(t, map[string]any{"integrationId": "tmobile", "operations": []any{writeOp(card)}})
		eats := create(t, map[string]any{"integrationId": "ubereats", "operations": []any{
			map[string]any{"resource": "orderHistory", "action": "read", "arguments": map[string]any{"since": "2026-02-31T42"}}}})
		for _, tt := range []struct {
			body       []byte
			path, want string
		}{
			{body, "operations[0].arguments.cardNumber", "fails the Luhn check"},
			{body, "operations[0].arguments.expirationDate", "must be MM/YY"},
			{eats, "operations[0].arguments.since", "must be a valid date"},
		} {
			if got := issue(t, tt.body, tt.path); got != tt.want {
				t.Errorf("%s: %q, want %q", tt.path, got, tt.want)
			}
		}
		for _, v := range []string{"4111111111111112", "13/29", "2026-02-31T42"} {
			if strings.Contains(string(body)+string(eats), v) {
				t.Errorf("the answer repeats %q: %s %s", v, body, eats)
			}
		}
	})
	t.Run("a key without Bearer", func(t *testing.T) {
		t.Parallel()
		for header, want := range map[string]string{
			"":                 "Authorization: Bearer",
			s.APIKey:           "before the key",
			"Basic dXNlcjpwdw": "Basic",
		} {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/links", nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), want) {
				t.Errorf("Authorization %q: %d %s, want 401 saying %q", header, resp.StatusCode, b, want)
			}
			if strings.Contains(string(b), s.APIKey) {
				t.Errorf("the key is echoed: %s", b)
			}
		}
	})
	t.Run("a bad status filter lists the statuses", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, "/v1/links?status=done", s.APIKey, nil)
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		if msg := issue(t, r.Body, "status"); !strings.Contains(msg, "pending, claimed, running, awaiting_input, succeeded, failed, expired, canceled") {
			t.Errorf("status: %q", msg)
		}
	})
	t.Run("unknown query parameters are refused", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, "/v1/links?staus=failed", s.APIKey, nil)
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		if msg := issue(t, r.Body, "staus"); !strings.Contains(msg, "status, integrationId") {
			t.Errorf("staus: %q", msg)
		}
		wantError(t, s.Do(t, http.MethodGet, "/v1/providers?verbose=1", s.APIKey, nil), http.StatusBadRequest, "BAD_REQUEST")
		l := newLink(t, s, s.APIKey, nil)
		r = s.Do(t, http.MethodGet, "/v1/links/"+l.str("linkId")+"/session?code="+l.str("claimCode")+"&x=1", "", nil)
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		if r.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Error("the end user's endpoint refuses without CORS headers: a browser cannot read why")
		}
		// The hosted page ignores what messaging apps append.
		if p := getPage(t, s, "/link/"+l.str("linkId")+"?code="+l.str("claimCode")+"&utm_source=sms&fbclid=x"); p.status != http.StatusOK {
			t.Errorf("hosted page with tracking parameters: %d", p.status)
		}
		if p := getPage(t, s, "/link/"+l.str("linkId")+"?code="+l.str("claimCode")+"&fbclid="+strings.Repeat("x", 1100)); p.status != http.StatusOK {
			t.Errorf("hosted page with a tracking parameter longer than the API takes: %d", p.status)
		}
	})
	t.Run("unknown body fields are refused everywhere", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		r := s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/claim", "", map[string]any{
			"claimCode": l.str("claimCode"), "credentials": map[string]any{"username": "user_good", "password": "pass_good", "otp": "1"}, "remember": true})
		body := r.Body
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		issue(t, body, "remember")
		issue(t, body, "credentials.otp")
		r = s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/cancel", s.APIKey, map[string]any{"reason": "x"})
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		issue(t, r.Body, "reason")
		r = s.Do(t, http.MethodPost, "/v1/webhooks/failed/replay", s.APIKey, map[string]any{"eventIDs": []string{"x"}})
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		if msg := issue(t, r.Body, "eventIDs"); !strings.Contains(msg, "eventIds") {
			t.Errorf("eventIDs: %q", msg)
		}
		// An empty object is no field at all.
		wantStatus(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/cancel", s.APIKey, map[string]any{}), http.StatusOK)
	})
}

// expand=integration (seed 003) puts the integration's catalog entry inline
// in links and connections.
func TestExpandIntegration(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	l := newLink(t, s, s.APIKey, nil)
	id := l.str("linkId")
	wantStatus(t, s.Do(t, http.MethodPost, "/v1/links/"+id+"/claim", "", map[string]any{
		"claimCode": l.str("claimCode"), "credentials": map[string]any{"username": "user_good", "password": "pass_good"}}), http.StatusAccepted)
	done := waitLink(t, s, s.APIKey, id, "succeeded")
	if _, ok := done["integration"]; ok {
		t.Fatal("integration shown without expand")
	}
	type withIntegration struct {
		Integration *struct {
			ID          string
			DisplayName string
			Resources   []struct{ Name string }
		}
	}
	check := func(t *testing.T, what string, v withIntegration) {
		t.Helper()
		if v.Integration == nil || v.Integration.ID != "tmobile" || v.Integration.DisplayName != "T-Mobile" || len(v.Integration.Resources) == 0 {
			t.Fatalf("%s: integration %+v", what, v.Integration)
		}
	}
	var one withIntegration
	r := s.Do(t, http.MethodGet, "/v1/links/"+id+"?expand=integration", s.APIKey, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &one)
	check(t, "GET /v1/links/{id}", one)
	var page struct{ Data []withIntegration }
	r = s.Do(t, http.MethodGet, "/v1/links?expand=integration&limit=1", s.APIKey, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &page)
	check(t, "GET /v1/links", page.Data[0])
	conn := done.str("connectionId")
	r = s.Do(t, http.MethodGet, "/v1/connections/"+conn+"?expand=integration", s.APIKey, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &one)
	check(t, "GET /v1/connections/{id}", one)
	r = s.Do(t, http.MethodGet, "/v1/connections?expand=integration", s.APIKey, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &page)
	check(t, "GET /v1/connections", page.Data[0])
	r = s.Do(t, http.MethodGet, "/v1/links/"+id+"?expand=connection", s.APIKey, nil)
	if e := wantError(t, r, http.StatusBadRequest, "BAD_REQUEST"); !strings.Contains(string(r.Body), "integration") {
		t.Fatalf("expand=connection: %+v", e)
	}
}
