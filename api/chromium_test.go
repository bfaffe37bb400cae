package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
)

// chromiumPath finds Debian's chromium. A missing browser fails the test:
// ./test.sh installs it, like redis-server.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: the hosted page is tested in headless Chromium. Install Debian's chromium package (apt-get install chromium), or run ./test.sh, which does.")
	return ""
}

// newBrowser starts one headless Chromium for the test; tabs are
// chromedp.NewContext(browser).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.DisableGPU, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium leaves its singleton socket directory in TMPDIR when it
		// is stopped; keep it in the test's own temporary directory.
		chromedp.Env("TMPDIR=" + t.TempDir()),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first call starts the browser; it must not carry a timeout, which
	// would stop the browser with it.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return browser
}

// newTab opens a tab that records script errors and CSP violations; its
// context times out after 30 s.
func newTab(t *testing.T, browser context.Context) (context.Context, func() []string) {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(browser)
	t.Cleanup(cancelTab)
	var mu sync.Mutex
	var problems []string
	msgs := chromedp.Console(tab)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s: %s (at %s:%d, source %q)", m.Type, m.Text, m.URL, m.Line, m.Source))
				mu.Unlock()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	t.Cleanup(cancel)
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return s
}

func TestHostedPageInChromium(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	browser := newBrowser(t)

	t.Run("login then success and the return URL", func(t *testing.T) {
		t.Parallel()
		returned := make(chan url.Values, 1)
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/done" {
				select {
				case returned <- r.URL.Query():
				default:
				}
			}
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<!doctype html><title>back in the app</title><h1 id=app>Back in the app</h1>"))
		}))
		t.Cleanup(app.Close)
		l := newLink(t, s, s.APIKey, map[string]any{
			"operations": []any{readOp(), map[string]any{"resource": "accountProfile", "action": "read"}},
			"returnUrl":  app.URL + "/done", "description": "INTERNAL-NOTE",
		})
		ctx, problems := newTab(t, browser)
		if err := chromedp.Do(ctx, chromedp.Navigate(l.str("appClipUrl")), chromedp.WaitVisible(chromedp.ID("login-form"))); err != nil {
			t.Fatal(err)
		}
		ops, body := text(t, ctx, "operations"), text(t, ctx, "page")
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("username"), "user_good"),
			chromedp.SendKeys(chromedp.ID("password"), "pass_good"),
			chromedp.Click(chromedp.ID("login")),
		); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ops, "See the cards saved to your T-Mobile account") || !strings.Contains(ops, "plan on your T-Mobile account") {
			t.Fatalf("operations as shown: %q", ops)
		}
		if strings.Contains(body, "INTERNAL-NOTE") {
			t.Fatal("the page shows the link's internal description")
		}
		q := returnedTo(t, ctx, returned, problems, "the link")
		got := fetchLink(t, s, s.APIKey, l.str("linkId"))
		if got.str("status") != "succeeded" || q.Get("linkId") != l.str("linkId") || q.Get("status") != "succeeded" || q.Get("verifier") != got.str("verifier") {
			t.Fatalf("return URL query %v, link %v", q, got)
		}
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("app"))); err != nil {
			t.Fatal(err)
		}
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc, app.URL+"/done?") {
			t.Fatalf("browser at %s", loc)
		}
		noProblems(t, problems)
	})

	t.Run("a wrong password, the form again, then the right one", func(t *testing.T) {
		t.Parallel()
		returned := make(chan url.Values, 1)
		app := appServer(t, returned)
		l := newLink(t, s, s.APIKey, map[string]any{"operations": []any{writeOp(goodCard())}, "returnUrl": app.URL + "/done"})
		ctx, problems := newTab(t, browser)
		err := chromedp.Do(ctx,
			chromedp.Navigate(l.str("appClipUrl")),
			chromedp.WaitVisible(chromedp.ID("login-form")),
		)
		if err != nil {
			t.Fatal(err)
		}
		if ops := text(t, ctx, "operations"); !strings.Contains(ops, "Visa ending in 1111") {
			t.Fatalf("the card to add is not named: %q", ops)
		}
		err = chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("username"), "user_good"),
			chromedp.SendKeys(chromedp.ID("password"), "pass_typo"),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("tries-left")),
		)
		if err != nil {
			t.Fatalf("%v (problems: %v)", err, problems())
		}
		if msg, left := text(t, ctx, "form-error"), text(t, ctx, "tries-left"); msg != "Wrong username or password." || left != "2 tries left." {
			t.Fatalf("after a wrong password: %q, %q", msg, left)
		}
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("password"), "pass_good"), chromedp.Click(chromedp.ID("login"))); err != nil {
			t.Fatal(err)
		}
		q := returnedTo(t, ctx, returned, problems, "the link")
		if q.Get("status") != "succeeded" {
			t.Fatalf("return URL query %v", q)
		}
		noProblems(t, problems)
	})

	t.Run("three wrong passwords: the failure stays until Continue", func(t *testing.T) {
		t.Parallel()
		returned := make(chan url.Values, 1)
		app := appServer(t, returned)
		l := newLink(t, s, s.APIKey, map[string]any{"returnUrl": app.URL + "/done"})
		ctx, problems := newTab(t, browser)
		steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(l.str("appClipUrl")), chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("username"), "user_good")}
		// Each wrong password leads to a new page: wait for the one that
		// counts it, not for the page it was typed into (whose nodes go).
		left := []string{"2 tries left.", "Last try."}
		for i := range 3 {
			steps = append(steps, chromedp.SendKeys(chromedp.ID("password"), "not-the-password"), chromedp.Click(chromedp.ID("login")))
			if i < 2 {
				steps = append(steps, chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//p[@id="tries-left"][normalize-space()=%q]`, left[i]))))
			}
		}
		steps = append(steps, chromedp.WaitVisible(chromedp.ID("outcome")))
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%v (problems: %v)", err, problems())
		}
		title, detail := text(t, ctx, "outcome"), text(t, ctx, "page")
		if title != "Wrong username or password" || !strings.Contains(detail, "can't be used again") {
			t.Fatalf("outcome %q: %q", title, detail)
		}
		if got := fetchLink(t, s, s.APIKey, l.str("linkId")); got.str("status") != "failed" {
			t.Fatalf("link status %v", got["status"])
		}
		// The page stays on the error: nothing in it goes anywhere by itself
		// (no redirect, no poll that could reload it, no meta refresh).
		script, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("script[nonce]").textContent + `+
			`(document.querySelector("meta[http-equiv=refresh]") ? "meta refresh" : "")`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(script, `"redirect":`) || strings.Contains(script, `"poll":`) || strings.Contains(script, "meta refresh") {
			t.Fatalf("the failure page goes on by itself: %s", script)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("return"))); err != nil {
			t.Fatal(err)
		}
		if q := returnedTo(t, ctx, returned, problems, "Continue"); q.Get("status") != "failed" {
			t.Fatalf("Continue: %v", q)
		}
		noProblems(t, problems)
	})

	t.Run("Cancel goes back with status canceled", func(t *testing.T) {
		t.Parallel()
		returned := make(chan url.Values, 1)
		app := appServer(t, returned)
		l := newLink(t, s, s.APIKey, map[string]any{"returnUrl": app.URL + "/done"})
		ctx, problems := newTab(t, browser)
		if err := chromedp.Do(ctx, chromedp.Navigate(l.str("appClipUrl")), chromedp.WaitVisible(chromedp.ID("decline")),
			chromedp.Click(chromedp.ID("decline"))); err != nil {
			t.Fatal(err)
		}
		if q := returnedTo(t, ctx, returned, problems, "Cancel"); q.Get("status") != "canceled" || q.Get("linkId") != l.str("linkId") {
			t.Fatalf("return URL query %v", q)
		}
		if got := fetchLink(t, s, s.APIKey, l.str("linkId")); got.str("status") != "canceled" {
			t.Fatalf("link status %v", got["status"])
		}
	})

	t.Run("one message per stage while it works", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		ctx, problems := newTab(t, browser)
		err := chromedp.Do(ctx,
			chromedp.Navigate(l.str("appClipUrl")),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("username"), "user_slow"),
			chromedp.SendKeys(chromedp.ID("password"), "pass_good"),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("progress")),
		)
		if err != nil {
			t.Fatalf("%v (problems: %v)", err, problems())
		}
		// The working page replaces itself at each stage: read a whole
		// working page's text in one evaluation, again while a reload makes
		// it fail.
		var msg string
		testenv.Eventually(t, 10*time.Second, "a working page's text", func() bool {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](
				`document.getElementById("progress") ? document.getElementById("page").innerText : ""`))
			msg = s
			return err == nil && msg != ""
		})
		connecting, working := strings.Contains(msg, "Connecting to T-Mobile…"), strings.Contains(msg, "Logging in to T-Mobile and doing what you allowed…")
		if connecting == working || strings.Contains(msg, "Logged in") {
			t.Fatalf("the working page says: %q", msg)
		}
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("outcome"))); err != nil {
			t.Fatalf("%v (problems: %v)", err, problems())
		}
	})
}

// appServer is the customer's app the hosted page returns to; each visit
// of /done sends its query to returned.
// returnedTo waits for the tab to reach the app's return URL and returns
// its query; what names the step in the failure.
func returnedTo(t *testing.T, ctx context.Context, returned <-chan url.Values, problems func() []string, what string) url.Values {
	t.Helper()
	select {
	case q := <-returned:
		return q
	case <-ctx.Done():
		t.Fatalf("%s: the browser never reached the return URL: %v", what, problems())
		return nil
	}
}

// noProblems fails the test if the tab saw a script error or a CSP
// violation.
func noProblems(t *testing.T, problems func() []string) {
	t.Helper()
	if p := problems(); len(p) > 0 {
		t.Fatalf("script errors or CSP violations: %v", p)
	}
}

func appServer(t *testing.T, returned chan<- url.Values) *httptest.Server {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/done" {
			select {
			case returned <- r.URL.Query():
			default:
			}
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<!doctype html><title>back in the app</title><h1 id=app>Back in the app</h1>"))
	}))
	t.Cleanup(app.Close)
	return app
}

// A page refused in passing (here by the client's rate limit, Retry-After 5)
// loads the link's page again by itself once the wait is over.
func TestHostedPageTriesAgainInChromium(t *testing.T) {
	t.Parallel()
	s := teststack.NewStack(t, teststack.StackOptions{API: func(c *api.Config) {
		c.ClientLimit, c.ClaimGuessLimit = api.Limit{Rate: 0.2, Burst: 1}, api.NoLimit
	}})
	l := newLink(t, s, s.APIKey, nil)
	ctx, problems := newTab(t, newBrowser(t))
	if p := getPage(t, s, "/link/"+l.str("linkId")+"?code="+url.QueryEscape(l.str("claimCode"))); p.status != http.StatusOK {
		t.Fatalf("the first page: %d", p.status) // the burst spent: the browser's first load is refused
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(l.str("appClipUrl"))); err != nil {
		t.Fatal(err)
	}
	state, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("page"), "data-state"))
	if err != nil || state.Value != "problem" {
		t.Fatalf("the browser's first load shows %q (%v), want the refusal", state.Value, err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("login-form"))); err != nil {
		t.Fatalf("the page did not load the link again: %v", err)
	}
	// The browser reports the refused load itself; nothing else.
	for _, p := range problems() {
		if !strings.Contains(p, "status of 429") {
			t.Errorf("script error or CSP violation: %s", p)
		}
	}
}
