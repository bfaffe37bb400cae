package api_test

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/teststack"
)

// fuzzStack is linkflow for a fuzz target: the API with no rate limits, no
// worker (nothing runs), on a real Redis and JetStream.
func fuzzStack(f *testing.F) *teststack.Stack {
	f.Helper()
	return teststack.NewStack(f, teststack.StackOptions{NoWorker: true, NoDispatcher: true, API: func(c *api.Config) {
		c.KeyLimit, c.ClientLimit, c.ClaimGuessLimit, c.LoginFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit, api.NoLimit
		c.UserLoginFailureLimit, c.AddressLoginFailureLimit, c.AuthFailureLimit = api.NoLimit, api.NoLimit, api.NoLimit
	}})
}

// send makes one request and returns its status and body.
func send(t *testing.T, method, u, key, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil // not a request a client could send
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// wantEnvelope checks an answer of the JSON API: never a 5xx, a 4xx in the
// error envelope with a request id.
func wantEnvelope(t *testing.T, status int, body []byte) {
	t.Helper()
	if status >= 500 {
		t.Fatalf("%d: %s", status, body)
	}
	if status >= 400 {
		var e apiError
		if json.Unmarshal(body, &e) != nil || e.Error.Code == "" || e.Meta.RequestID == "" {
			t.Fatalf("%d without the error envelope: %s", status, body)
		}
	}
}

const fuzzCard = "4111111111111111"

// FuzzCreateLink posts arbitrary bodies to POST /v1/links (operations,
// argument schemas, every field). Properties: never a 5xx; every refusal is
// the error envelope; an operation's arguments (a card number here) never
// come back, neither in the answer nor when the link is read.
func FuzzCreateLink(f *testing.F) {
	s := fuzzStack(f)
	for _, b := range []string{
		`{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}]}`,
		`{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"write","arguments":{"cardNumber":"` + fuzzCard + `","expirationDate":"12/30","cvv":"123","nameOnCard":"A","billingZip":"10001"}}],"expiresIn":60}`,
		`{"integrationId":"att","operations":[{"resource":"paymentMethod","action":"write","arguments":{"cardNumber":1}}],"returnUrl":"myapp://x","webhookUrl":"ftp://x"}`,
		`{"integrationId":"tmobile","operations":[],"connectionId":"conn_x","description":"é","debug":"yes"}`,
		`[]`, `{"operations":null}`, `{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read","arguments":[]}]}`,
	} {
		f.Add([]byte(b), "")
	}
	f.Add([]byte(`{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}]}`), "idem-1")
	f.Fuzz(func(t *testing.T, body []byte, idem string) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/links", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.APIKey)
		if idem != "" && validHeaderValue(idem) {
			req.Header.Set("Idempotency-Key", idem)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err) // the API closed or broke the connection
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantEnvelope(t, resp.StatusCode, out)
		if resp.StatusCode != http.StatusCreated {
			return
		}
		if showsArguments(t, body, out) {
			t.Fatalf("the 201 shows arguments: %s", out)
		}
		var created struct{ LinkID string }
		if err := json.Unmarshal(out, &created); err != nil || created.LinkID == "" {
			t.Fatalf("201 body %s", out)
		}
		status, got := send(t, http.MethodGet, s.URL+"/v1/links/"+created.LinkID, s.APIKey, "", nil)
		if status != http.StatusOK || showsArguments(t, body, got) {
			t.Fatalf("read: %d %s", status, got)
		}
	})
}

// showsArguments reports whether a link as the API shows it shows an
// operation's arguments: a member named "arguments" at any depth, or the
// card number where the request that created the link held it only in
// arguments (a description or a URL that holds it is the customer's own).
func showsArguments(t *testing.T, request, shown []byte) bool {
	t.Helper()
	var link any
	if err := json.Unmarshal(shown, &link); err != nil {
		t.Fatalf("the link: %v: %s", err, shown)
	}
	if hasMember(link, "arguments") {
		return true
	}
	if !bytes.Contains(shown, []byte(fuzzCard)) {
		return false
	}
	var req map[string]any
	dec := json.NewDecoder(bytes.NewReader(request))
	dec.UseNumber()
	if dec.Decode(&req) != nil {
		return true
	}
	ops, _ := req["operations"].([]any)
	for _, op := range ops {
		if m, ok := op.(map[string]any); ok {
			delete(m, "arguments")
		}
	}
	// The customer's own strings, as sent and as a URL decodes them (the
	// API rebuilds a return URL's query).
	var own func(v any) bool
	own = func(v any) bool {
		switch x := v.(type) {
		case string:
			q, _ := url.QueryUnescape(x)
			p, _ := url.PathUnescape(x)
			return strings.Contains(x, fuzzCard) || strings.Contains(q, fuzzCard) || strings.Contains(p, fuzzCard)
		case json.Number:
			return strings.Contains(x.String(), fuzzCard)
		case []any:
			return slices.ContainsFunc(x, own)
		case map[string]any:
			for k, e := range x {
				if own(k) || own(e) {
					return true
				}
			}
		}
		return false
	}
	return !own(req)
}

// hasMember reports whether a decoded JSON value has an object member named
// name, at any depth (a string value that says so is not one).
func hasMember(v any, name string) bool {
	switch x := v.(type) {
	case []any:
		return slices.ContainsFunc(x, func(e any) bool { return hasMember(e, name) })
	case map[string]any:
		for k, e := range x {
			if k == name || hasMember(e, name) {
				return true
			}
		}
	}
	return false
}

// FuzzHostedForm posts arbitrary forms to the hosted page's login and MFA
// forms of an open link. Properties: never a 5xx; the answer is HTML or a
// redirect; the password typed never comes back in the page.
func FuzzHostedForm(f *testing.F) {
	s := fuzzStack(f)
	var l struct{ LinkID, ClaimCode string }
	s.Do(f, http.MethodPost, "/v1/links", s.APIKey, map[string]any{"integrationId": "tmobile",
		"operations": []any{map[string]any{"resource": "paymentMethod", "action": "read"}}}).JSON(f, &l)
	id, code := l.LinkID, l.ClaimCode
	f.Add("username=user_good&password=pass_good&code=CODE", "login")
	f.Add("username=&password=&code=", "login")
	f.Add("code=CODE&challengeId=c&response=123456&attemptsLeft=3", "mfa")
	f.Add("%zz=1", "login")
	f.Add(strings.Repeat("a=1&", 100), "mfa")
	f.Add("username=user_good&password=pass_good&code=CODE&origin=https%3A%2F%2Fa.example%0D%0ASet-Cookie%3A+x%3D1", "login")
	f.Add("code=CODE&challengeId=c&response=1&origin=%22%3E%3Cscript%3E", "mfa")
	// Passwords the page holds anyway: its words, its indentation.
	f.Add("username=&password=password&code=CODE", "login")
	f.Add("username=&password=autocomplete&code=CODE", "login")
	f.Add("username=&password=++++++++&code=CODE", "login")
	f.Fuzz(func(t *testing.T, form, which string) {
		form = strings.ReplaceAll(form, "CODE", url.QueryEscape(code))
		path := "/link/" + id + "/login"
		if which == "mfa" {
			path = "/link/" + id + "/mfa"
		}
		resp, body := postForm(t, s.URL+path, form)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %q: %d %s", path, form, resp.StatusCode, body)
		}
		if resp.StatusCode != http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s %q: %d %s", path, form, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		// The page's own URL, whatever origin the form carries.
		if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && !strings.HasPrefix(loc, "/link/"+id+"?code=") {
			t.Fatalf("%s %q: Location %q", path, form, loc)
		}
		if len(resp.Header.Values("Set-Cookie")) > 0 {
			t.Fatalf("%s %q: sets a cookie", path, form)
		}
		// The password: the page may hold its text by chance ("password",
		// a username typed the same, indentation), so it must not hold it
		// more often than the page answering the same form with another
		// password of the same shape.
		v, err := url.ParseQuery(form)
		pw := strings.TrimSpace(v.Get("password"))
		if err != nil || len(pw) < 6 {
			return
		}
		v.Set("password", unlike(v.Get("password")))
		_, other := postForm(t, s.URL+path, v.Encode())
		if shown := htmlEscaped(pw); bytes.Count(body, shown) > bytes.Count(other, shown) {
			t.Fatalf("the page shows the password %q: %s", pw, body)
		}
	})
}

// postForm posts a form as the hosted page's own form would, without
// following a redirect.
func postForm(t *testing.T, u, form string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// htmlText escapes a value as the hosted page's templates do, in text and
// in a quoted attribute alike.
var htmlText = template.Must(template.New("").Parse("{{.}}"))

func htmlEscaped(s string) []byte {
	var b bytes.Buffer
	_ = htmlText.Execute(&b, s)
	return b.Bytes()
}

// unlike returns a string of pw's shape (the same white space where pw has
// it, every other character replaced by one of the same UTF-8 length, so
// every length check decides alike) that shares none of its other
// characters.
func unlike(pw string) string {
	// By UTF-8 length: a character to write, and one for where pw has it.
	subs := [5][2]rune{1: {'Z', 'Q'}, 2: {'Ж', 'Ю'}, 3: {'語', '話'}, 4: {'𝒵', '𝒬'}}
	var b strings.Builder
	for len(pw) > 0 {
		r, n := utf8.DecodeRuneInString(pw) // an invalid byte: n is 1
		pw = pw[n:]
		switch sub := subs[n]; {
		case n == 1 && unicode.IsSpace(r):
			b.WriteRune(r)
		case r == sub[0]:
			b.WriteRune(sub[1])
		default:
			b.WriteRune(sub[0])
		}
	}
	return b.String()
}

// FuzzCursors pages every list with arbitrary cursors: links, connections,
// failed deliveries, the event log. Properties: never a 5xx; a cursor
// linkflow did not issue is a 400 in the error envelope, never a crash.
func FuzzCursors(f *testing.F) {
	s := fuzzStack(f)
	for _, c := range []string{"", "link_01a2", "conn_x", "1700000000000|evt_1", "18446744073709551615-18446744073709551615",
		"0-0", "|", "link_{x}", "\x00", "-1-0"} {
		f.Add(c)
	}
	lists := []string{"/v1/links?cursor=", "/v1/connections?cursor=", "/v1/webhooks/failed?cursor=", "/v1/events?after="}
	f.Fuzz(func(t *testing.T, cursor string) {
		for _, l := range lists {
			status, body := send(t, http.MethodGet, s.URL+l+url.QueryEscape(cursor), s.APIKey, "", nil)
			wantEnvelope(t, status, body)
			if status != http.StatusOK && status != http.StatusBadRequest {
				t.Fatalf("%s%q: %d %s", l, cursor, status, body)
			}
		}
	})
}

// validHeaderValue says whether net/http sends v as a header value: no
// control character but tab (RFC 9110's field-value, as httpguts checks).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
