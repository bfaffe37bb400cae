package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/testenv"
)

func TestClaim(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)

	t.Run("accepted once", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		r := claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good")
		wantStatus(t, r, http.StatusAccepted)
		var got linkJSON
		r.JSON(t, &got)
		if got.str("linkId") != l.str("linkId") || got.str("status") != "claimed" || got["expiresAt"] == nil {
			t.Fatalf("202 body %s", r.Body)
		}
		e := wantError(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusConflict, "CONFLICT_ERROR")
		if !strings.Contains(e.Error.Message, "claimed") {
			t.Fatalf("second claim: %q", e.Error.Message)
		}
	})

	t.Run("wrong code and unknown link look the same", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		wrong := wantError(t, claimLink(t, s, l.str("linkId"), "clm_wrong", "user_good", "pass_good"), http.StatusNotFound, "NOT_FOUND")
		unknown := wantError(t, claimLink(t, s, "link_01900000000070008000000000000000", l.str("claimCode"), "user_good", "pass_good"), http.StatusNotFound, "NOT_FOUND")
		if wrong.Error.Message != unknown.Error.Message {
			t.Fatalf("wrong code %q vs unknown link %q", wrong.Error.Message, unknown.Error.Message)
		}
		// The right code still works.
		wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
	})

	t.Run("required username", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"requiredUsername": "user_good"})
		wantError(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "someone_else", "pass_good"), http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY")
		wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
	})

	t.Run("validation", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		e := wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/claim", "", map[string]any{}), http.StatusBadRequest, "BAD_REQUEST")
		if len(e.Error.Issues) != 3 {
			t.Fatalf("issues %v, want claimCode, credentials.username, credentials.password", e.Error.Issues)
		}
		wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/claim", "", "nope"), http.StatusBadRequest, "BAD_REQUEST")
	})

	t.Run("an API key is not needed nor used", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		_, other, _ := s.NewOrg(t, "someone")
		r := s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/claim", other,
			map[string]any{"claimCode": l.str("claimCode"), "credentials": map[string]string{"username": "user_good", "password": "pass_good"}})
		wantStatus(t, r, http.StatusAccepted)
	})

	t.Run("guessing is limited per link, the right code still works", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		for range 10 {
			wantError(t, claimLink(t, s, l.str("linkId"), "clm_guess", "user_good", "pass_good"), http.StatusNotFound, "NOT_FOUND")
		}
		r := claimLink(t, s, l.str("linkId"), "clm_guess", "user_good", "pass_good")
		wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_REQUESTS")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		// Whoever knows only the link id cannot lock its end user out.
		wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
	})
}

func TestSessionAndInput(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	if err := s.Store.UpdateOrg(context.Background(), s.OrgID, linkflow.OrgUpdate{AppSchemes: &[]string{"myapp"}}); err != nil {
		t.Fatal(err)
	}
	l := newLink(t, s, s.APIKey, map[string]any{"returnUrl": "myapp://done", "description": "internal only"})
	id, code := l.str("linkId"), l.str("claimCode")

	v := fetchSession(t, s, id, code)
	if v.Status != "pending" || v.Challenge != nil || v.RedirectURL != "" {
		t.Fatalf("pending session %+v", v)
	}
	r := s.Do(t, http.MethodGet, "/v1/links/"+id+"/session?code="+code, "", nil)
	if strings.Contains(string(r.Body), "internal only") || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("session shows the internal description or may be cached: %s", r.Body)
	}
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/"+id+"/session?code=clm_wrong", "", nil), http.StatusNotFound, "NOT_FOUND")
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/"+id+"/session", "", nil), http.StatusNotFound, "NOT_FOUND")

	wantStatus(t, claimLink(t, s, id, code, "user_mfa", "pass_good"), http.StatusAccepted)
	testenv.Eventually(t, 10*time.Second, "a challenge", func() bool {
		v = fetchSession(t, s, id, code)
		return v.Status == "awaiting_input" && v.Challenge != nil
	})
	c := v.Challenge
	if c.ID == "" || c.Type != "otp" || c.Message == "" || c.ExpiresAt <= time.Now().UnixMilli() || c.AttemptsLeft != 3 {
		t.Fatalf("challenge %+v", c)
	}
	if got := fetchLink(t, s, s.APIKey, id); got.str("status") != "awaiting_input" {
		t.Fatalf("GET status %v", got["status"])
	}

	input := func(body map[string]any) *http.Response {
		return s.Do(t, http.MethodPost, "/v1/links/"+id+"/input", "", body).Response
	}
	wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+id+"/input", "", map[string]any{"claimCode": code}), http.StatusBadRequest, "BAD_REQUEST")
	wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+id+"/input", "", map[string]any{"claimCode": "clm_wrong", "challengeId": c.ID, "response": "123456"}), http.StatusNotFound, "NOT_FOUND")
	wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+id+"/input", "", map[string]any{"claimCode": code, "challengeId": "other", "response": "123456"}), http.StatusConflict, "CONFLICT_ERROR")

	// A wrong answer: the same challenge again, one attempt fewer.
	if resp := input(map[string]any{"claimCode": code, "challengeId": c.ID, "response": "000000"}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("input: %d", resp.StatusCode)
	}
	testenv.Eventually(t, 10*time.Second, "the challenge again after a wrong answer", func() bool {
		v = fetchSession(t, s, id, code)
		return v.Challenge != nil && v.Challenge.AttemptsLeft == 2
	})
	if v.Challenge.LastError == "" {
		t.Fatalf("no lastError after a wrong answer: %+v", v.Challenge)
	}
	if resp := input(map[string]any{"claimCode": code, "challengeId": v.Challenge.ID, "response": "123456"}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("input: %d", resp.StatusCode)
	}
	testenv.Eventually(t, 10*time.Second, "success after the right answer", func() bool {
		v = fetchSession(t, s, id, code)
		return v.Status == "succeeded"
	})
	got := fetchLink(t, s, s.APIKey, id)
	want := "myapp://done?linkId=" + id + "&status=succeeded&verifier=" + got.str("verifier")
	if v.RedirectURL != want || v.Challenge != nil || v.Error != nil || got.str("verifier") == "" {
		t.Fatalf("finished session %+v, want redirectUrl %s", v, want)
	}
	// Answering after the end is a conflict.
	wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+id+"/input", "", map[string]any{"claimCode": code, "challengeId": c.ID, "response": "123456"}), http.StatusConflict, "CONFLICT_ERROR")

	// A failed link's session has the error and the redirect with its status.
	l = newLink(t, s, s.APIKey, map[string]any{"returnUrl": "https://app.example.com/back"})
	wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_locked", "pass_good"), http.StatusAccepted)
	testenv.Eventually(t, 10*time.Second, "the locked account's failure", func() bool {
		v = fetchSession(t, s, l.str("linkId"), l.str("claimCode"))
		return v.Status == "failed"
	})
	if v.Error == nil || v.Error.Code != "ACCOUNT_LOCKED" || !strings.Contains(v.RedirectURL, "status=failed") || !strings.HasPrefix(v.RedirectURL, "https://app.example.com/back?") {
		t.Fatalf("failed session %+v", v)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	l := newLink(t, s, s.APIKey, nil)
	for _, path := range []string{"/claim", "/session", "/input"} {
		resp := sendPreflight(t, s.URL+"/v1/links/"+l.str("linkId")+path, "POST")
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") || h.Get("Access-Control-Max-Age") == "" {
			t.Fatalf("preflight %s: %d %v", path, resp.StatusCode, h)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight %s allows credentials", path)
		}
	}
	// The actual requests carry the header too, errors included.
	r := s.Do(t, http.MethodGet, "/v1/links/"+l.str("linkId")+"/session?code="+l.str("claimCode"), "", nil)
	if r.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Fatalf("session CORS headers %v", r.Header)
	}
	r = claimLink(t, s, l.str("linkId"), "clm_wrong", "u", "p")
	if r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("a 404 claim has no CORS header")
	}
	// A query string refused before routing (too long) too; its preflight
	// is answered, so that the browser sends the request and reads why.
	long := "/v1/links/" + l.str("linkId") + "/session?code=" + strings.Repeat("x", 1100)
	r = s.Do(t, http.MethodGet, long, "", nil)
	wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
	if r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("a refused query string has no CORS header: %v", r.Header)
	}
	if resp := sendPreflight(t, s.URL+long, "GET"); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("preflight with a long query: %d %v", resp.StatusCode, resp.Header)
	}
	if r := s.Do(t, http.MethodGet, "/v1/links?status="+strings.Repeat("x", 1100), s.APIKey, nil); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("an API-key endpoint's refused query string has CORS headers")
	}
	// Never on the API-key endpoints.
	for _, p := range []string{"/v1/links", "/v1/links/" + l.str("linkId"), "/v1/providers"} {
		if resp := sendPreflight(t, s.URL+p, "GET"); resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.StatusCode < 400 {
			t.Fatalf("preflight of %s: %d %v", p, resp.StatusCode, resp.Header)
		}
		r := s.Do(t, http.MethodGet, p, s.APIKey, nil)
		if r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%s has CORS headers", p)
		}
	}
}

// sendPreflight sends what a browser does before it calls url with method
// from another origin.
func sendPreflight(t *testing.T, url, method string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, url, nil)
	req.Header.Set("Origin", "https://shop.example.com")
	req.Header.Set("Access-Control-Request-Method", method)
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestProviders(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) {})
	r := s.Do(t, http.MethodGet, "/v1/providers", s.APIKey, nil)
	wantStatus(t, r, http.StatusOK)
	var out struct {
		Data []struct {
			ID          string `json:"id"`
			DisplayName string `json:"displayName"`
			Resources   []struct {
				Name    string `json:"name"`
				Actions []struct {
					Name              string         `json:"name"`
					Description       string         `json:"description"`
					Arguments         map[string]any `json:"arguments"`
					ResultDescription string         `json:"resultDescription"`
				} `json:"actions"`
			} `json:"resources"`
		} `json:"data"`
	}
	r.JSON(t, &out)
	var ids []string
	for _, in := range out.Data {
		ids = append(ids, in.ID)
		if in.DisplayName == "" || len(in.Resources) == 0 {
			t.Fatalf("integration %+v", in)
		}
		for _, res := range in.Resources {
			for _, a := range res.Actions {
				if a.Description == "" || a.ResultDescription == "" || a.Arguments["type"] != "object" {
					t.Fatalf("%s %s.%s: %+v", in.ID, res.Name, a.Name, a)
				}
			}
		}
	}
	if strings.Join(ids, ",") != "att,tmobile,ubereats,verizon" {
		t.Fatalf("integrations %v", ids)
	}
	wantError(t, s.Do(t, http.MethodGet, "/v1/providers", "", nil), http.StatusUnauthorized, "UNAUTHORIZED")
}
