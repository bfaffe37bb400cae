package api_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/store"
)

// browser is a client that does not follow redirects, like a test of a
// form POST wants.
var browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type pageResp struct {
	status int
	header http.Header
	body   string
}

func getPage(t *testing.T, s *teststack.Stack, path string) pageResp {
	t.Helper()
	resp, err := browser.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pageResp{resp.StatusCode, resp.Header, string(b)}
}

func postPage(t *testing.T, s *teststack.Stack, path string, form url.Values, hdr map[string]string) pageResp {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pageResp{resp.StatusCode, resp.Header, string(b)}
}

func pageState(p pageResp) string {
	m := regexp.MustCompile(`data-state="([a-z_]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestHostedPage(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	l := newLink(t, s, s.APIKey, map[string]any{
		"operations":  []any{readOp(), writeOp(goodCard())},
		"description": "INTERNAL-NOTE-42", "returnUrl": "https://app.example.com/done",
	})
	id, code := l.str("linkId"), l.str("claimCode")
	path := "/link/" + id + "?code=" + url.QueryEscape(code)

	p := getPage(t, s, path)
	if p.status != http.StatusOK || pageState(p) != "login" {
		t.Fatalf("page: %d state %q", p.status, pageState(p))
	}
	for _, want := range []string{"T-Mobile", "Test organization", "See the cards saved to your T-Mobile account",
		"Add a new card to your T-Mobile account", `name="password"`, `action="/link/` + id + `/login"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the login page lacks %q", want)
		}
	}
	for _, never := range []string{"INTERNAL-NOTE-42", "4111", "verifier"} {
		if strings.Contains(p.body, never) {
			t.Errorf("the login page shows %q", never)
		}
	}
	// Security headers; the CSP nonce is the inline script's and style's.
	h := p.header
	csp := h.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
	if nonce == nil || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		!strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	if strings.Count(p.body, `nonce="`+nonce[1]+`"`) != 2 || strings.Contains(p.body, "<script>") || strings.Contains(p.body, "style=") {
		t.Fatalf("every script and style must carry the nonce %s; no inline style attributes:\n%s", nonce[1], p.body)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" ||
		h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("headers %v", h)
	}
	if again := getPage(t, s, path); strings.Contains(again.header.Get("Content-Security-Policy"), nonce[1]) {
		t.Fatal("the nonce is reused")
	}
	// The page opens many times while the link is open.
	for range 3 {
		if p := getPage(t, s, path); pageState(p) != "login" {
			t.Fatalf("reopened: %q", pageState(p))
		}
	}

	// A wrong code and an unknown link: the same neutral page.
	wrong := getPage(t, s, "/link/"+id+"?code=clm_wrong")
	unknown := getPage(t, s, "/link/link_unknown?code="+code)
	none := getPage(t, s, "/link/"+id)
	for _, p := range []pageResp{wrong, unknown, none} {
		if p.status != http.StatusNotFound || pageState(p) != "notfound" || strings.Contains(p.body, "T-Mobile") {
			t.Fatalf("not found page: %d %q", p.status, pageState(p))
		}
	}

	// A form POST from another site is refused; from the page it claims.
	form := url.Values{"code": {code}, "username": {"user_good"}, "password": {"pass_good"}}
	if p := postPage(t, s, "/link/"+id+"/login", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); p.status != http.StatusForbidden {
		t.Fatalf("cross-site form: %d", p.status)
	}
	if p := postPage(t, s, "/link/"+id+"/login", form, map[string]string{"Origin": "https://evil.example"}); p.status != http.StatusForbidden {
		t.Fatalf("cross-origin form: %d", p.status)
	}
	if got := fetchLink(t, s, s.APIKey, id); got.str("status") != "pending" {
		t.Fatal("a refused form claimed the link")
	}
	// A missing password re-renders the form with the username kept.
	bad := postPage(t, s, "/link/"+id+"/login", url.Values{"code": {code}, "username": {"user_good"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if bad.status != http.StatusBadRequest || pageState(bad) != "login" || !strings.Contains(bad.body, `value="user_good"`) || !strings.Contains(bad.body, "form-error") {
		t.Fatalf("missing password: %d %q", bad.status, pageState(bad))
	}
	ok := postPage(t, s, "/link/"+id+"/login", form, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"})
	if ok.status != http.StatusSeeOther || ok.header.Get("Location") != path {
		t.Fatalf("login: %d Location %q, want 303 to %s", ok.status, ok.header.Get("Location"), path)
	}
	// Progress (with a refresh for browsers without JavaScript), then the
	// outcome with the redirect to the return URL.
	var final pageResp
	testenv.Eventually(t, 10*time.Second, "the page to show success", func() bool {
		final = getPage(t, s, path)
		st := pageState(final)
		if st == "working" && !strings.Contains(final.body, `http-equiv="refresh"`) {
			t.Fatal("the progress page has no refresh fallback")
		}
		return st == "succeeded"
	})
	got := fetchLink(t, s, s.APIKey, id)
	redirect := "https://app.example.com/done?linkId=" + id + "&amp;status=succeeded&amp;verifier=" + got.str("verifier")
	if !strings.Contains(final.body, redirect) || !strings.Contains(final.body, `http-equiv="refresh" content="1;url=`) {
		t.Fatalf("the outcome page does not redirect to %s:\n%s", redirect, final.body)
	}
	// A second login is refused: the link is no longer open.
	again := postPage(t, s, "/link/"+id+"/login", form, nil)
	if again.status != http.StatusSeeOther {
		t.Fatalf("login to a finished link: %d", again.status)
	}
}

func TestHostedPageMFAAndFailures(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}
	if err := s.Store.UpdateOrg(context.Background(), s.OrgID, linkflow.OrgUpdate{AppSchemes: &[]string{"myapp"}}); err != nil {
		t.Fatal(err)
	}

	t.Run("mfa", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"returnUrl": "myapp://linked"})
		id, code := l.str("linkId"), l.str("claimCode")
		path := "/link/" + id + "?code=" + url.QueryEscape(code)
		if p := postPage(t, s, "/link/"+id+"/login", url.Values{"code": {code}, "username": {"user_mfa"}, "password": {"pass_good"}}, same); p.status != http.StatusSeeOther {
			t.Fatalf("login: %d", p.status)
		}
		var p pageResp
		testenv.Eventually(t, 10*time.Second, "the MFA prompt", func() bool {
			p = getPage(t, s, path)
			return pageState(p) == "mfa"
		})
		chID := regexp.MustCompile(`name="challengeId" value="([^"]+)"`).FindStringSubmatch(p.body)
		left := regexp.MustCompile(`name="attemptsLeft" value="([^"]+)"`).FindStringSubmatch(p.body)
		if chID == nil || left == nil || !strings.Contains(p.body, `action="/link/`+id+`/mfa"`) {
			t.Fatalf("MFA form:\n%s", p.body)
		}
		// A wrong code: the prompt comes back saying so.
		r := postPage(t, s, "/link/"+id+"/mfa", url.Values{"code": {code}, "challengeId": {chID[1]}, "attemptsLeft": {left[1]}, "response": {"999999"}}, same)
		if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "&sent=") {
			t.Fatalf("mfa post: %d %q", r.status, r.header.Get("Location"))
		}
		testenv.Eventually(t, 10*time.Second, "the prompt with the error", func() bool {
			p = getPage(t, s, path)
			return pageState(p) == "mfa" && strings.Contains(p.body, "not accepted")
		})
		left = regexp.MustCompile(`name="attemptsLeft" value="([^"]+)"`).FindStringSubmatch(p.body)
		r = postPage(t, s, "/link/"+id+"/mfa", url.Values{"code": {code}, "challengeId": {chID[1]}, "attemptsLeft": {left[1]}, "response": {"123456"}}, same)
		// Right after sending, the page says it is checking (unless the
		// worker was faster).
		if p := getPage(t, s, r.header.Get("Location")); pageState(p) == "mfa" && !strings.Contains(p.body, "Checking your code") {
			t.Fatalf("after sending the answer:\n%s", p.body)
		}
		testenv.Eventually(t, 10*time.Second, "success", func() bool {
			p = getPage(t, s, path)
			return pageState(p) == "succeeded"
		})
		// An app scheme gets a plain link (and the script), not a meta refresh.
		if !strings.Contains(p.body, `href="myapp://linked?linkId=`) || strings.Contains(p.body, `content="1;url=`) {
			t.Fatalf("app scheme redirect:\n%s", p.body)
		}
	})

	t.Run("wrong passwords", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"returnUrl": "https://app.example.com/done"})
		id, code := l.str("linkId"), l.str("claimCode")
		path := "/link/" + id + "?code=" + url.QueryEscape(code)
		postPage(t, s, "/link/"+id+"/login", url.Values{"code": {code}, "username": {"user_good"}, "password": {"nope"}}, same)
		// One typo does not end the link: the login form comes back, saying
		// so, twice; the third wrong password fails the link.
		for _, left := range []string{"2 tries left", "Last try"} {
			var p pageResp
			testenv.Eventually(t, 10*time.Second, "the login form again ("+left+")", func() bool {
				p = getPage(t, s, path)
				return pageState(p) == "login" && strings.Contains(p.body, left)
			})
			chID := regexp.MustCompile(`name="challengeId" value="([^"]+)"`).FindStringSubmatch(p.body)
			attempts := regexp.MustCompile(`name="attemptsLeft" value="([^"]+)"`).FindStringSubmatch(p.body)
			if chID == nil || attempts == nil || !strings.Contains(p.body, "Wrong username or password") ||
				!strings.Contains(p.body, `value="user_good" readonly`) || !strings.Contains(p.body, `action="/link/`+id+`/mfa"`) ||
				!strings.Contains(p.body, `id="decline"`) {
				t.Fatalf("the login form after a wrong password:\n%s", p.body)
			}
			r := postPage(t, s, "/link/"+id+"/mfa", url.Values{"code": {code}, "challengeId": {chID[1]}, "attemptsLeft": {attempts[1]}, "password": {" still wrong "}}, same)
			if r.status != http.StatusSeeOther {
				t.Fatalf("password again: %d", r.status)
			}
			if p := getPage(t, s, r.header.Get("Location")); pageState(p) == "working" && !strings.Contains(p.body, "Checking your password") {
				t.Fatalf("right after sending the password:\n%s", p.body)
			}
		}
		var p pageResp
		testenv.Eventually(t, 10*time.Second, "the failure", func() bool {
			p = getPage(t, s, path)
			return pageState(p) == "failed"
		})
		if !strings.Contains(p.body, "Wrong username or password") || !strings.Contains(p.body, "can&#39;t be used again") || strings.Contains(p.body, "<form") {
			t.Fatalf("failure page:\n%s", p.body)
		}
		// An error is not left behind by itself: the end user reads it, then
		// goes back with Continue.
		if strings.Contains(p.body, `http-equiv="refresh"`) || strings.Contains(p.body, `"redirect":`) ||
			!strings.Contains(p.body, `id="return" href="https://app.example.com/done?linkId=`+id+`&amp;status=failed`) {
			t.Fatalf("the failure page redirects by itself, or has no Continue:\n%s", p.body)
		}
		if got := fetchLink(t, s, s.APIKey, id); got["error"].(map[string]any)["code"] != "INVALID_CREDENTIALS" {
			t.Fatalf("link %v", got)
		}
	})

	t.Run("consent names the card; Cancel declines", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"operations": []any{readOp(), writeOp(goodCard())}, "returnUrl": "https://app.example.com/done"})
		id, code := l.str("linkId"), l.str("claimCode")
		p := getPage(t, s, "/link/"+id+"?code="+url.QueryEscape(code))
		if !strings.Contains(p.body, "Add a new card") || !strings.Contains(p.body, "Visa ending in 1111") || strings.Contains(p.body, "4111111111111111") {
			t.Fatalf("consent:\n%s", p.body)
		}
		if !strings.Contains(p.body, `action="/link/`+id+`/decline"`) {
			t.Fatalf("no Cancel:\n%s", p.body)
		}
		r := postPage(t, s, "/link/"+id+"/decline", url.Values{"code": {code}}, same)
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/link/"+id+"?") {
			t.Fatalf("Cancel: %d to %q, want 303 to the page", r.status, r.header.Get("Location"))
		}
		// The page then sends the end user back at once, with the status.
		verifier := fetchLink(t, s, s.APIKey, id).str("verifier")
		back := getPage(t, s, r.header.Get("Location"))
		if want := `content="0;url=https://app.example.com/done?linkId=` + id + `&amp;status=canceled&amp;verifier=` + verifier; pageState(back) != "canceled" || !strings.Contains(back.body, want) {
			t.Fatalf("after Cancel, want %s:\n%s", want, back.body)
		}
		if got := fetchLink(t, s, s.APIKey, id); got.str("status") != "canceled" {
			t.Fatalf("declined link %v", got)
		}
		if r := postPage(t, s, "/link/"+id+"/decline", url.Values{"code": {code}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); r.status != http.StatusForbidden {
			t.Fatalf("a cross-site Cancel: %d", r.status)
		}
	})

	t.Run("required username", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"requiredUsername": "user_good"})
		id, code := l.str("linkId"), l.str("claimCode")
		p := getPage(t, s, "/link/"+id+"?code="+code)
		if !strings.Contains(p.body, `value="user_good" readonly`) {
			t.Fatalf("required username not prefilled:\n%s", p.body)
		}
		p = postPage(t, s, "/link/"+id+"/login", url.Values{"code": {code}, "username": {"intruder"}, "password": {"pass_good"}}, same)
		if p.status != http.StatusUnprocessableEntity || pageState(p) != "login" || !strings.Contains(p.body, "different T-Mobile account") {
			t.Fatalf("mismatch: %d %q", p.status, pageState(p))
		}
	})

	t.Run("expired and canceled", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		wantStatus(t, s.Do(t, http.MethodPost, "/v1/links/"+l.str("linkId")+"/cancel", s.APIKey, nil), http.StatusOK)
		if p := getPage(t, s, "/link/"+l.str("linkId")+"?code="+l.str("claimCode")); pageState(p) != "canceled" {
			t.Fatalf("canceled link page %q", pageState(p))
		}
		l = newLink(t, s, s.APIKey, map[string]any{"expiresIn": 1})
		testenv.Eventually(t, 5*time.Second, "the expired page", func() bool {
			return pageState(getPage(t, s, "/link/"+l.str("linkId")+"?code="+l.str("claimCode"))) == "expired"
		})
		p := postPage(t, s, "/link/"+l.str("linkId")+"/login", url.Values{"code": {l.str("claimCode")}, "username": {"user_good"}, "password": {"pass_good"}}, same)
		if p.status != http.StatusSeeOther {
			t.Fatalf("login to an expired link: %d", p.status)
		}
	})
}

// atMFAPrompt logs in to a new link's hosted page as user_mfa and waits for
// the MFA prompt; it returns the link's id, its claim code and its page.
func atMFAPrompt(t *testing.T, s *teststack.Stack) (id, code, path string) {
	t.Helper()
	l := newLink(t, s, s.APIKey, nil)
	id, code = l.str("linkId"), l.str("claimCode")
	path = "/link/" + id + "?code=" + url.QueryEscape(code)
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}
	if p := postPage(t, s, "/link/"+id+"/login", url.Values{"code": {code}, "username": {"user_mfa"}, "password": {"pass_good"}}, same); p.status != http.StatusSeeOther {
		t.Fatalf("login: %d", p.status)
	}
	testenv.Eventually(t, 10*time.Second, "the MFA prompt", func() bool { return pageState(getPage(t, s, path)) == "mfa" })
	return id, code, path
}

// Past its challenge's expiry the page offers no form (an answer would be
// refused): it waits for the outcome, the session failing the link.
func TestHostedPageAfterTheChallengeExpired(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64 // how far the API's clock is ahead
	s := newAPIStack(t, func(c *api.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	})
	_, _, path := atMFAPrompt(t, s)
	ahead.Store(int64(10 * time.Minute)) // past the challenge's 5 minutes
	p := getPage(t, s, path)
	if pageState(p) != "working" || strings.Contains(p.body, `name="challengeId"`) || !strings.Contains(p.body, "The time to answer ran out") {
		t.Fatalf("the page past the challenge's expiry:\n%s", p.body)
	}
}

// An answer refused because the session stopped waiting for it lands on a
// page that says the time ran out, though this API's clock says the
// challenge is still open (the worker's clock ahead of it): not on the
// form again, empty, as if nothing had been sent.
func TestHostedPageAfterAnAnswerRefusedAsExpired(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64 // how far the store's clock is ahead
	s := teststack.NewStack(t, teststack.StackOptions{
		Store: func(c *store.Config) { c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) } },
		API: func(c *api.Config) {
			c.ClientLimit, c.ClaimGuessLimit = api.NoLimit, api.NoLimit
		}})
	id, code, _ := atMFAPrompt(t, s)
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}
	var sess struct {
		Challenge struct {
			ID           string `json:"id"`
			AttemptsLeft int    `json:"attemptsLeft"`
		} `json:"challenge"`
	}
	s.Do(t, http.MethodGet, "/v1/links/"+id+"/session?code="+url.QueryEscape(code), "", nil).JSON(t, &sess)
	// Refused as expired (here by the store's clock, run ahead for the
	// answer alone), then read back by the API on its own clock.
	ahead.Store(int64(10 * time.Minute))
	p := postPage(t, s, "/link/"+id+"/mfa", url.Values{"code": {code}, "challengeId": {sess.Challenge.ID},
		"attemptsLeft": {strconv.Itoa(sess.Challenge.AttemptsLeft)}, "response": {"123456"}}, same)
	ahead.Store(0)
	if p.status != http.StatusSeeOther {
		t.Fatalf("the answer: %d", p.status)
	}
	p = getPage(t, s, p.header.Get("Location"))
	if pageState(p) != "working" || strings.Contains(p.body, `name="challengeId"`) || !strings.Contains(p.body, "The time to answer ran out") {
		t.Fatalf("the page after an answer refused as expired:\n%s", p.body)
	}
}

// A passing refusal (here the client's rate limit) keeps the link's page
// from showing: the page loads it again by itself after Retry-After, and
// tells the web drop-in only the stage "working" (its hello), so it stays
// open (it closed, reporting an error, on a 503 during a Redis blip).
func TestHostedPageTriesAgainAfterAPassingRefusal(t *testing.T) {
	t.Parallel()
	s := teststack.NewStack(t, teststack.StackOptions{API: func(c *api.Config) {
		c.ClientLimit, c.ClaimGuessLimit = api.Limit{Rate: 0.01, Burst: 1}, api.NoLimit
	}})
	l := newLink(t, s, s.APIKey, nil)
	app := "https://app.example.com"
	path := "/link/" + l.str("linkId") + "?code=" + url.QueryEscape(l.str("claimCode")) + "&origin=" + url.QueryEscape(app)
	if p := getPage(t, s, path); p.status != http.StatusOK {
		t.Fatalf("the first page: %d", p.status)
	}
	p := getPage(t, s, path)
	cfg := scriptConfig(p)
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || pageState(p) != "problem" ||
		!strings.Contains(cfg, `"retry":"/link/`+l.str("linkId")) || strings.Contains(cfg, `"error"`) || !strings.Contains(cfg, `"stage":"working"`) ||
		frameAncestors(p) != app || !strings.Contains(p.body, "Trying again in") {
		t.Fatalf("the refused page: %d, frame-ancestors %q, config %s\n%s", p.status, frameAncestors(p), cfg, p.body)
	}
	// Without JavaScript, a <meta refresh> loads the link's page (never
	// the refused form's address) after Retry-After.
	refresh := `<noscript><meta http-equiv="refresh" content="` + p.header.Get("Retry-After") + `;url=` +
		html.EscapeString(path) + `"></noscript>`
	if !strings.Contains(p.body, refresh) {
		t.Fatalf("no %s in the refused page:\n%s", refresh, p.body)
	}
	// A form refused before it is read (the login, the limit checked
	// first) goes back to the link's page all the same.
	p = postPage(t, s, "/link/"+l.str("linkId")+"/login", url.Values{"code": {l.str("claimCode")}, "origin": {app},
		"username": {"user_good"}, "password": {"pass_good"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if cfg = scriptConfig(p); p.status != http.StatusTooManyRequests || !strings.Contains(cfg, `"retry":"/link/`+l.str("linkId")) ||
		!strings.Contains(cfg, `"stage":"working"`) || strings.Contains(cfg, `"error"`) || frameAncestors(p) != app {
		t.Fatalf("the refused login: %d, frame-ancestors %q, config %s", p.status, frameAncestors(p), cfg)
	}
	if !strings.Contains(p.body, `;url=`+html.EscapeString(path)+`"`) {
		t.Fatalf("the refused login's page does not refresh to the link's page:\n%s", p.body)
	}
	// A refused GET's body is not read, whatever its Content-Type says (a
	// multipart body would be parsed into memory and files): no code, no
	// retry.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("code", l.str("claimCode"))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/link/"+l.str("linkId"), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cfg := scriptConfig(pageResp{resp.StatusCode, resp.Header, string(b)}); resp.StatusCode != http.StatusTooManyRequests || strings.Contains(cfg, `"retry"`) {
		t.Fatalf("a refused GET with a multipart body: %d, config %s", resp.StatusCode, cfg)
	}
}
