package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
)

func writeOp(args map[string]any) map[string]any {
	return map[string]any{"resource": "paymentMethod", "action": "write", "arguments": args}
}

func goodCard() map[string]any {
	return map[string]any{"cardNumber": "4111111111111111", "expirationDate": "12/" + fmt.Sprint(time.Now().Year()%100+2),
		"cvv": "123", "nameOnCard": "John Doe", "billingZip": "10001"}
}

func TestCreateLinkValidation(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	badCard := goodCard()
	badCard["cardNumber"] = "4111111111111112" // fails Luhn
	delete(badCard, "cvv")
	tests := []struct {
		name  string
		body  any
		paths []string // every issue, in any order
	}{
		{"not an object", `[]`, []string{""}},
		{"nothing", map[string]any{}, []string{"integrationId", "operations"}},
		{"empty integration", map[string]any{"integrationId": " ", "operations": []any{readOp()}}, []string{"integrationId"}},
		{"integration not a string", map[string]any{"integrationId": 5, "operations": []any{readOp()}}, []string{"integrationId"}},
		{"empty operations", map[string]any{"integrationId": "tmobile", "operations": []any{}}, []string{"operations"}},
		{"operations not an array", map[string]any{"integrationId": "tmobile", "operations": "read"}, []string{"operations"}},
		{"unknown integration", map[string]any{"integrationId": "nokia", "operations": []any{readOp()}}, []string{"integrationId"}},
		{"unknown resource", map[string]any{"integrationId": "tmobile", "operations": []any{map[string]any{"resource": "orderHistory", "action": "read"}}}, []string{"operations[0].resource"}},
		{"unknown action", map[string]any{"integrationId": "tmobile", "operations": []any{map[string]any{"resource": "paymentMethod", "action": "delete"}}}, []string{"operations[0].action"}},
		{"missing resource and action", map[string]any{"integrationId": "tmobile", "operations": []any{map[string]any{}}}, []string{"operations[0].resource", "operations[0].action"}},
		{"unknown operation field", map[string]any{"integrationId": "tmobile", "operations": []any{map[string]any{"resource": "paymentMethod", "action": "read", "args": map[string]any{}}}}, []string{"operations[0].args"}},
		{"arguments against the schema", map[string]any{"integrationId": "tmobile", "operations": []any{readOp(), writeOp(badCard)}}, []string{"operations[1].arguments.cardNumber", "operations[1].arguments.cvv"}},
		{"arguments not an object", map[string]any{"integrationId": "tmobile", "operations": []any{writeOp(nil), map[string]any{"resource": "paymentMethod", "action": "write", "arguments": "x"}}}, []string{"operations[0].arguments.billingZip", "operations[0].arguments.cardNumber", "operations[0].arguments.cvv", "operations[0].arguments.expirationDate", "operations[0].arguments.nameOnCard", "operations[1].arguments"}},
		{"webhookUrl not a URL", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "webhookUrl": "not a url"}, []string{"webhookUrl"}},
		{"webhookUrl relative", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "webhookUrl": "/hooks"}, []string{"webhookUrl"}},
		{"webhookUrl ftp", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "webhookUrl": "ftp://example.com/x"}, []string{"webhookUrl"}},
		{"returnUrl javascript", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "returnUrl": "javascript:alert(1)"}, []string{"returnUrl"}},
		{"returnUrl data", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "returnUrl": "data:text/html,<b>x</b>"}, []string{"returnUrl"}},
		{"returnUrl relative", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "returnUrl": "/done"}, []string{"returnUrl"}},
		{"returnUrl with a user name", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "returnUrl": "https://app.example.com@evil.example/done"}, []string{"returnUrl"}},
		{"returnUrl unregistered app scheme", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "returnUrl": "otherapp://callback"}, []string{"returnUrl"}},
		{"expiresIn zero", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "expiresIn": 0}, []string{"expiresIn"}},
		{"expiresIn negative", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "expiresIn": -5}, []string{"expiresIn"}},
		{"expiresIn fraction", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "expiresIn": 1.5}, []string{"expiresIn"}},
		{"expiresIn string", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "expiresIn": "60"}, []string{"expiresIn"}},
		{"expiresIn over 30 days", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "expiresIn": 30*24*3600 + 1}, []string{"expiresIn"}},
		{"expiresIn overflowing", `{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}],"expiresIn":9223372036854775807}`, []string{"expiresIn"}},
		{"debug not a boolean", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "debug": "yes"}, []string{"debug"}},
		{"description too long", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "description": strings.Repeat("x", 1001)}, []string{"description"}},
		{"unknown fields", map[string]any{"integrationId": "tmobile", "operations": []any{readOp()}, "webhook_url": "https://x.example", "callback": 1}, []string{"callback", "webhook_url"}},
		{"everything at once", map[string]any{
			"integrationId": "tmobile", "operations": []any{readOp(), writeOp(badCard)},
			"webhookUrl": "nope", "returnUrl": "javascript:alert(1)", "expiresIn": 0, "debug": 1, "color": "red",
		}, []string{"color", "webhookUrl", "returnUrl", "debug", "expiresIn", "operations[1].arguments.cardNumber", "operations[1].arguments.cvv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.Do(t, http.MethodPost, "/v1/links", s.APIKey, tt.body)
			e := wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
			var got []string
			for _, is := range e.Error.Issues {
				if is.Message == "" {
					t.Errorf("issue %q has no message", is.Path)
				}
				got = append(got, is.Path)
			}
			slices.Sort(got)
			want := slices.Clone(tt.paths)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("issues %v (%s), want paths %v", got, r.Body, want)
			}
		})
	}

	t.Run("accepted URLs and limits", func(t *testing.T) {
		t.Parallel()
		if err := s.Store.UpdateOrg(context.Background(), s.OrgID, linkflow.OrgUpdate{AppSchemes: &[]string{"myapp", "com.example.app"}}); err != nil {
			t.Fatal(err)
		}
		for _, body := range []map[string]any{
			{"returnUrl": "myapp://callback", "webhookUrl": "http://hooks.example.com/in"},
			{"returnUrl": "https://app.example.com/done?x=1", "expiresIn": 30 * 24 * 3600},
			{"returnUrl": "com.example.app:/oauth", "debug": true, "externalUserId": "u1", "description": "internal", "requiredUsername": "user_good"},
			{"operations": []any{readOp(), writeOp(goodCard())}},
		} {
			newLink(t, s, s.APIKey, body)
		}
	})
}

func TestCreateLinkBodyErrors(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	wantError(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, `{"integrationId": "tmobile",`), http.StatusBadRequest, "BAD_REQUEST")
	wantError(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, `integrationId=tmobile`), http.StatusBadRequest, "BAD_REQUEST")
	big := `{"integrationId":"tmobile","description":"` + strings.Repeat("x", 1<<20) + `"}`
	wantError(t, s.Do(t, http.MethodPost, "/v1/links", s.APIKey, big), http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")

	// post sends body as contentType and answers the status.
	post := func(url, contentType string, body io.Reader) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, body)
		req.Header.Set("Authorization", "Bearer "+s.APIKey)
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(s.URL+"/v1/links", "text/plain", strings.NewReader(`{}`)); code != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain body: %d, want 415", code)
	}
	// An endpoint that takes no body refuses one too large or not JSON
	// like any other, and does nothing.
	l := newLink(t, s, s.APIKey, nil)
	cancel := s.URL + "/v1/links/" + l.str("linkId") + "/cancel"
	wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/cancel", s.APIKey, `{"x":"`+strings.Repeat("x", 1<<20)+`"}`),
		http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	if code := post(cancel, "text/plain", strings.NewReader(`{}`)); code != http.StatusUnsupportedMediaType {
		t.Fatalf("cancel with a text/plain body: %d, want 415", code)
	}
	if got := fetchLink(t, s, s.APIKey, l.str("linkId")); got.str("status") != "pending" {
		t.Fatalf("after refused cancels: %s, want pending", got.str("status"))
	}
	// An empty body is none, whatever it says it is (here chunked, of
	// unknown length, as a form).
	if code := post(cancel, "application/x-www-form-urlencoded", io.NopCloser(strings.NewReader(""))); code != http.StatusOK {
		t.Fatalf("cancel with an empty chunked form body: %d, want 200", code)
	}

	// Wrong methods are 405 with Allow; unknown paths 404; both enveloped.
	r := s.Do(t, http.MethodDelete, "/v1/links", s.APIKey, nil)
	wantError(t, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	if allow := r.Header.Get("Allow"); allow != "GET, HEAD, POST" {
		t.Fatalf("Allow %q, want GET, HEAD, POST", allow)
	}
	wantError(t, s.Do(t, http.MethodGet, "/v1/nothing", s.APIKey, nil), http.StatusNotFound, "NOT_FOUND")

	// Without a key, or with a wrong one: 401.
	wantError(t, s.Do(t, http.MethodPost, "/v1/links", "", map[string]any{}), http.StatusUnauthorized, "UNAUTHORIZED")
	wantError(t, s.Do(t, http.MethodGet, "/v1/links", "lfk_wrong", nil), http.StatusUnauthorized, "UNAUTHORIZED")
}

func TestCreateLinkResponse(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	before := time.Now().UnixMilli()
	r := s.Do(t, http.MethodPost, "/v1/links", s.APIKey, map[string]any{
		"integrationId": "tmobile", "operations": []any{readOp(), writeOp(goodCard())},
		"webhookUrl": "https://your-server.example.com/webhook", "returnUrl": "https://your-app.example.com/done",
		"description": "internal note", "requiredUsername": "user_good", "externalUserId": "cust-1", "debug": true,
	})
	wantStatus(t, r, http.StatusCreated)
	var l linkJSON
	r.JSON(t, &l)
	if loc := r.Header.Get("Location"); loc != "/v1/links/"+l.str("linkId") {
		t.Errorf("Location %q, want the link's path", loc)
	}
	// Seed 001's 201 body, field for field.
	want := []string{"linkId", "claimCode", "integrationId", "operations", "status", "appClipUrl", "returnUrl", "expiresAt", "createdAt"}
	if got := keys(l); len(got) != len(want) {
		t.Fatalf("201 fields %v, want exactly %v", got, want)
	}
	for _, k := range want {
		if _, ok := l[k]; !ok {
			t.Fatalf("201 body lacks %s: %s", k, r.Body)
		}
	}
	id, code := l.str("linkId"), l.str("claimCode")
	if !strings.HasPrefix(id, "link_") || !strings.HasPrefix(code, "clm_") || l.str("status") != "pending" || l.str("integrationId") != "tmobile" {
		t.Fatalf("201 body %s", r.Body)
	}
	if got := l.str("appClipUrl"); got != s.URL+"/link/"+id+"?code="+code {
		t.Fatalf("appClipUrl %s", got)
	}
	if got := l.str("returnUrl"); got != "https://your-app.example.com/done?linkId="+id {
		t.Fatalf("returnUrl %s", got)
	}
	if bytes.Contains(r.Body, []byte("4111")) || bytes.Contains(r.Body, []byte("arguments")) {
		t.Fatalf("the 201 body echoes arguments: %s", r.Body)
	}
	ops, _ := json.Marshal(l["operations"])
	if string(ops) != `[{"action":"read","resource":"paymentMethod"},{"action":"write","resource":"paymentMethod"}]` {
		t.Fatalf("operations %s", ops)
	}
	created, expires := int64(l["createdAt"].(float64)), int64(l["expiresAt"].(float64))
	if created < before || created > time.Now().UnixMilli() || expires-created != 4*3600*1000 {
		t.Fatalf("createdAt %d expiresAt %d: want now and now+4h", created, expires)
	}

	// GET shows the open link with its claim code, and never the arguments.
	g := s.Do(t, http.MethodGet, "/v1/links/"+id, s.APIKey, nil)
	wantStatus(t, g, http.StatusOK)
	var got linkJSON
	g.JSON(t, &got)
	for k, v := range map[string]any{"status": "pending", "claimCode": code, "appClipUrl": l["appClipUrl"], "description": "internal note",
		"requiredUsername": "user_good", "externalUserId": "cust-1", "debug": true, "webhookUrl": "https://your-server.example.com/webhook"} {
		if got[k] != v {
			t.Errorf("GET %s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"claimedAt", "startedAt", "completedAt", "username", "connectionId"} {
		if v, ok := got[k]; !ok || v != nil {
			t.Errorf("GET %s = %v, want null", k, v)
		}
	}
	if _, ok := got["result"]; ok {
		t.Errorf("a pending link has a result")
	}
	if bytes.Contains(g.Body, []byte("4111")) || bytes.Contains(g.Body, []byte("arguments")) {
		t.Fatalf("GET echoes arguments: %s", g.Body)
	}
	// The sandbox run's output must not have the card number either.
	wantStatus(t, claimLink(t, s, id, code, "user_good", "pass_good"), http.StatusAccepted)
	done := waitLink(t, s, s.APIKey, id, "succeeded")
	b, _ := json.Marshal(done)
	if bytes.Contains(b, []byte("4111111111111111")) || done["claimCode"] != nil || done["appClipUrl"] != nil {
		t.Fatalf("finished link %s", b)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	post := func(key string, body string) *teststack.Response {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/links", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.APIKey)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return &teststack.Response{Response: resp, Body: buf.Bytes()}
	}
	body := `{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}]}`
	first := post("k1", body)
	wantStatus(t, first, http.StatusCreated)
	// The same key and body (whitespace aside) replays the first response.
	again := post("k1", "{\n  \"integrationId\": \"tmobile\",\n  \"operations\": [{\"resource\": \"paymentMethod\", \"action\": \"read\"}]\n}")
	wantStatus(t, again, http.StatusCreated)
	if !bytes.Equal(first.Body, again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay %s, want %s", again.Body, first.Body)
	}
	if loc := again.Header.Get("Location"); loc == "" || loc != first.Header.Get("Location") {
		t.Fatalf("replay's Location %q, want the first's %q", loc, first.Header.Get("Location"))
	}
	// The same key with another body is a conflict.
	wantError(t, post("k1", `{"integrationId":"att","operations":[{"resource":"paymentMethod","action":"read"}]}`), http.StatusConflict, "CONFLICT_ERROR")
	// Without a key, or with another, a new link.
	var a, b linkJSON
	post("", body).JSON(t, &a)
	post("k2", body).JSON(t, &b)
	var f linkJSON
	first.JSON(t, &f)
	if a.str("linkId") == f.str("linkId") || b.str("linkId") == f.str("linkId") {
		t.Fatal("a request without the key replayed")
	}
	// A retry replays even when what validation reads changed since: here
	// the return URL's app scheme, no longer allowed. (The key says the link
	// exists; refusing the retry would tell the client it does not.)
	if err := s.Store.UpdateOrg(context.Background(), s.OrgID, linkflow.OrgUpdate{AppSchemes: &[]string{"myapp"}}); err != nil {
		t.Fatal(err)
	}
	withScheme := `{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}],"returnUrl":"myapp://done"}`
	made := post("k3", withScheme)
	wantStatus(t, made, http.StatusCreated)
	if err := s.Store.UpdateOrg(context.Background(), s.OrgID, linkflow.OrgUpdate{AppSchemes: &[]string{"otherapp"}}); err != nil {
		t.Fatal(err)
	}
	wantError(t, post("k4", withScheme), http.StatusBadRequest, "BAD_REQUEST")
	retried := post("k3", withScheme)
	wantStatus(t, retried, http.StatusCreated)
	if !bytes.Equal(made.Body, retried.Body) || retried.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after the scheme was dropped: %d %s, want the first answer %s", retried.StatusCode, retried.Body, made.Body)
	}
	// Keys belong to the organization: another's same key makes its own link.
	_, otherKey, _ := s.NewOrg(t, "other")
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/links", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+otherKey)
	req.Header.Set("Idempotency-Key", "k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another organization's k1: %d replayed=%q", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"))
	}

	// Concurrent duplicates make one link.
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := post("concurrent", body)
			if r == nil || r.StatusCode != http.StatusCreated {
				t.Errorf("concurrent duplicate %d: %v", i, r)
				return
			}
			var l linkJSON
			if err := json.Unmarshal(r.Body, &l); err != nil {
				t.Error(err)
			}
			ids[i] = l.str("linkId")
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("concurrent duplicates made links %v", ids)
		}
	}
	var list struct {
		Data []linkJSON `json:"data"`
	}
	s.Do(t, http.MethodGet, "/v1/links?limit=100", s.APIKey, nil).JSON(t, &list)
	if len(list.Data) != 5 {
		t.Fatalf("%d links listed, want 5 (k1, none, k2, k3, concurrent)", len(list.Data))
	}
}

func TestGetLinkThroughItsLife(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	l := newLink(t, s, s.APIKey, map[string]any{"operations": []any{readOp(), map[string]any{"resource": "accountProfile", "action": "read"}},
		"returnUrl": "https://app.example.com/done"})
	id, code := l.str("linkId"), l.str("claimCode")
	wantStatus(t, claimLink(t, s, id, code, "user_good", "pass_good"), http.StatusAccepted)
	got := waitLink(t, s, s.APIKey, id, "succeeded")
	for _, k := range []string{"createdAt", "expiresAt", "claimedAt", "startedAt", "completedAt"} {
		if _, ok := got[k].(float64); !ok {
			t.Errorf("succeeded link: %s = %v, want epoch ms", k, got[k])
		}
	}
	if got.str("username") != "user_good" || !strings.HasPrefix(got.str("connectionId"), "conn_") {
		t.Errorf("username %v connectionId %v", got["username"], got["connectionId"])
	}
	if _, ok := got["claimCode"]; ok {
		t.Errorf("a finished link shows its claim code")
	}
	if _, ok := got["appClipUrl"]; ok {
		t.Errorf("a finished link shows its appClipUrl")
	}
	res, _ := got["result"].(map[string]any)
	if ops, _ := res["operations"].([]any); len(ops) != 2 {
		t.Fatalf("two operations' result wraps them: %v", got["result"])
	}
	if _, ok := got["error"]; ok {
		t.Errorf("a succeeded link has an error")
	}

	// Failed: the error with its code; no result.
	l = newLink(t, s, s.APIKey, nil)
	wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_locked", "pass_good"), http.StatusAccepted)
	got = waitLink(t, s, s.APIKey, l.str("linkId"), "failed")
	e, _ := got["error"].(map[string]any)
	if e["code"] != "ACCOUNT_LOCKED" || e["message"] == "" {
		t.Fatalf("failed link error %v", got["error"])
	}
	if _, ok := got["result"]; ok {
		t.Errorf("a failed link has a result")
	}
	if got.str("completedAt") != "" || got["completedAt"] == nil {
		t.Errorf("completedAt %v", got["completedAt"])
	}

	// A single operation's result is flat.
	l = newLink(t, s, s.APIKey, nil)
	wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
	got = waitLink(t, s, s.APIKey, l.str("linkId"), "succeeded")
	if res, _ := got["result"].(map[string]any); res["paymentMethods"] == nil {
		t.Fatalf("single-operation result %v, want flat {paymentMethods}", got["result"])
	}

	// Unknown links are 404.
	wantError(t, s.Do(t, http.MethodGet, "/v1/links/link_nope", s.APIKey, nil), http.StatusNotFound, "NOT_FOUND")
}

func TestListLinks(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	_, key, _ := s.NewOrg(t, "lister")
	var ids []string
	for i := range 7 {
		body := map[string]any{"externalUserId": fmt.Sprintf("u%d", i%2)}
		if i%3 == 0 {
			body["integrationId"] = "att"
		}
		ids = append(ids, newLink(t, s, key, body).str("linkId"))
	}
	// Cancel one, so a status filter has something to find.
	wantStatus(t, s.Do(t, http.MethodPost, "/v1/links/"+ids[1]+"/cancel", key, nil), http.StatusOK)

	list := func(q string) ([]string, string) {
		t.Helper()
		r := s.Do(t, http.MethodGet, "/v1/links?"+q, key, nil)
		wantStatus(t, r, http.StatusOK)
		var out struct {
			Data       []linkJSON `json:"data"`
			NextCursor *string    `json:"nextCursor"`
		}
		r.JSON(t, &out)
		var got []string
		for _, l := range out.Data {
			got = append(got, l.str("linkId"))
		}
		next := ""
		if out.NextCursor != nil {
			next = *out.NextCursor
		}
		return got, next
	}
	rev := slices.Clone(ids)
	slices.Reverse(rev)
	if got, next := list(""); !slices.Equal(got, rev) || next != "" {
		t.Fatalf("all: %v next %q, want newest first %v", got, next, rev)
	}
	if got, _ := list("status=canceled"); !slices.Equal(got, []string{ids[1]}) {
		t.Fatalf("status=canceled: %v", got)
	}
	if got, _ := list("integrationId=att"); !slices.Equal(got, []string{ids[6], ids[3], ids[0]}) {
		t.Fatalf("integrationId=att: %v", got)
	}
	if got, _ := list("externalUserId=u1"); !slices.Equal(got, []string{ids[5], ids[3], ids[1]}) {
		t.Fatalf("externalUserId=u1: %v", got)
	}
	if got, _ := list("externalUserId=u1&integrationId=att"); !slices.Equal(got, []string{ids[3]}) {
		t.Fatalf("externalUserId=u1&integrationId=att: %v", got)
	}
	if got, _ := list("externalUserId=u0&status=pending&integrationId=tmobile"); !slices.Equal(got, []string{ids[4], ids[2]}) {
		t.Fatalf("three filters: %v", got)
	}

	// Pages of 3, with links created between pages: the pages go on where
	// they were, and the new links are on a fresh first page.
	p1, c1 := list("limit=3")
	newer := newLink(t, s, key, nil).str("linkId")
	p2, c2 := list("limit=3&cursor=" + url.QueryEscape(c1))
	newLink(t, s, key, nil)
	p3, c3 := list("limit=3&cursor=" + url.QueryEscape(c2))
	if all := append(append(p1, p2...), p3...); !slices.Equal(all, rev) || c3 != "" {
		t.Fatalf("pages %v %v %v (last cursor %q), want %v", p1, p2, p3, c3, rev)
	}
	if first, _ := list("limit=1"); first[0] == newer {
		t.Fatal("the newest link is not first")
	}

	wantError(t, s.Do(t, http.MethodGet, "/v1/links?status=done", key, nil), http.StatusBadRequest, "BAD_REQUEST")
	wantError(t, s.Do(t, http.MethodGet, "/v1/links?limit=0", key, nil), http.StatusBadRequest, "BAD_REQUEST")
	wantError(t, s.Do(t, http.MethodGet, "/v1/links?limit=101", key, nil), http.StatusBadRequest, "BAD_REQUEST")
	wantError(t, s.Do(t, http.MethodGet, "/v1/links?cursor=garbage", key, nil), http.StatusBadRequest, "BAD_REQUEST")
	// Another organization sees none of these.
	if got, _ := list("limit=100"); len(got) != 9 {
		t.Fatalf("%d links", len(got))
	}
	r := s.Do(t, http.MethodGet, "/v1/links?limit=100", s.APIKey, nil)
	var other struct {
		Data []linkJSON `json:"data"`
	}
	r.JSON(t, &other)
	if len(other.Data) != 0 {
		t.Fatalf("another organization lists %d links", len(other.Data))
	}
}

func TestCancelLink(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, func(c *api.Config) {})
	cancel := func(id string) *teststack.Response {
		return s.Do(t, http.MethodPost, "/v1/links/"+id+"/cancel", s.APIKey, nil)
	}

	t.Run("pending", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		r := cancel(l.str("linkId"))
		wantStatus(t, r, http.StatusOK)
		var got linkJSON
		r.JSON(t, &got)
		if got.str("status") != "canceled" || got["completedAt"] == nil || got["claimCode"] != nil {
			t.Fatalf("canceled: %s", r.Body)
		}
		wantError(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusConflict, "CONFLICT_ERROR")
		wantError(t, cancel(l.str("linkId")), http.StatusConflict, "CONFLICT_ERROR")
	})

	t.Run("running", func(t *testing.T) {
		t.Parallel()
		// user_slow takes 2s per operation: cancel while the first runs.
		l := newLink(t, s, s.APIKey, map[string]any{"operations": []any{readOp(), map[string]any{"resource": "accountProfile", "action": "read"}}})
		id := l.str("linkId")
		wantStatus(t, claimLink(t, s, id, l.str("claimCode"), "user_slow", "pass_good"), http.StatusAccepted)
		waitLink(t, s, s.APIKey, id, "running")
		r := cancel(id)
		wantStatus(t, r, http.StatusAccepted)
		var got linkJSON
		r.JSON(t, &got)
		if got["cancelRequested"] != true {
			t.Fatalf("cancel of a running link: %s", r.Body)
		}
		got = waitLink(t, s, s.APIKey, id, "failed", "succeeded")
		e, _ := got["error"].(map[string]any)
		// "running" starts before login, so the cancel lands before the
		// first operation or during it: never later.
		if idx := e["operationIndex"]; got.str("status") != "failed" || e["code"] != "CANCELED" || (idx != float64(0) && idx != float64(1)) {
			t.Fatalf("canceled while running: status %v error %v, want failed CANCELED before operation 0 or 1", got["status"], got["error"])
		}
		wantError(t, cancel(id), http.StatusConflict, "CONFLICT_ERROR")
	})

	t.Run("finished", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
		waitLink(t, s, s.APIKey, l.str("linkId"), "succeeded")
		e := wantError(t, cancel(l.str("linkId")), http.StatusConflict, "CONFLICT_ERROR")
		if !strings.Contains(e.Error.Message, "succeeded") {
			t.Fatalf("message %q does not say the link succeeded", e.Error.Message)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		wantError(t, cancel("link_0000"), http.StatusNotFound, "NOT_FOUND")
	})
}

func TestLinkExpiry(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	hooks := make(chan string, 10)
	recv := newEventSink(t, hooks)
	l := newLink(t, s, s.APIKey, map[string]any{"expiresIn": 1, "webhookUrl": recv})
	id, code := l.str("linkId"), l.str("claimCode")
	if exp, cr := l["expiresAt"].(float64), l["createdAt"].(float64); exp-cr != 1000 {
		t.Fatalf("expiresAt - createdAt = %v ms, want 1000", exp-cr)
	}
	// The server's clock expires it: nobody polls.
	var ev string
	select {
	case ev = <-hooks:
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook for the expired link")
	}
	if ev != "link.expired" {
		t.Fatalf("webhook %s, want link.expired", ev)
	}
	got := fetchLink(t, s, s.APIKey, id)
	if got.str("status") != "expired" || got["claimCode"] != nil || got["appClipUrl"] != nil || got["completedAt"] == nil {
		t.Fatalf("expired link: %v", got)
	}
	e := wantError(t, claimLink(t, s, id, code, "user_good", "pass_good"), http.StatusConflict, "CONFLICT_ERROR")
	if e.Error.Message != "Link has expired." {
		t.Fatalf("claim after expiry: %q does not say expired", e.Error.Message)
	}
	if v := fetchSession(t, s, id, code); v.Status != "expired" {
		t.Fatalf("session status %s", v.Status)
	}
	testenv.Eventually(t, 5*time.Second, "the expired link listed as expired", func() bool {
		var out struct {
			Data []linkJSON `json:"data"`
		}
		s.Do(t, http.MethodGet, "/v1/links?status=expired", s.APIKey, nil).JSON(t, &out)
		return len(out.Data) == 1 && out.Data[0].str("linkId") == id
	})
}

// TestWithoutWorker covers states a worker and the sweeper move past at
// once: a claimed link that is canceled, and a pending link whose expiry
// passed before the sweeper recorded it.
func TestWithoutWorker(t *testing.T) {
	t.Parallel()
	s := teststack.NewStack(t, teststack.StackOptions{NoWorker: true, API: func(c *api.Config) {
		c.KeyLimit, c.ClientLimit, c.ClaimGuessLimit, c.LoginFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit, api.NoLimit
	}})

	t.Run("cancel a claimed link", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		wantStatus(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusAccepted)
		if got := fetchLink(t, s, s.APIKey, l.str("linkId")); got.str("status") != "claimed" || got.str("username") != "user_good" || got["claimedAt"] == nil {
			t.Fatalf("claimed link %v", got)
		}
		r := s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/cancel", s.APIKey, nil)
		wantStatus(t, r, http.StatusOK)
		var got linkJSON
		r.JSON(t, &got)
		if got.str("status") != "canceled" {
			t.Fatalf("canceled claimed link %s", r.Body)
		}
	})

	t.Run("expired before the sweeper", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"expiresIn": 1})
		testenv.Eventually(t, 5*time.Second, "the link to read expired", func() bool {
			return fetchLink(t, s, s.APIKey, l.str("linkId")).str("status") == "expired"
		})
		e := wantError(t, claimLink(t, s, l.str("linkId"), l.str("claimCode"), "user_good", "pass_good"), http.StatusConflict, "CONFLICT_ERROR")
		if e.Error.Message != "Link has expired." {
			t.Fatalf("claim after expiry: %q", e.Error.Message)
		}
		wantError(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/cancel", s.APIKey, nil), http.StatusConflict, "CONFLICT_ERROR")
	})
}
