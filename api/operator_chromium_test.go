package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The operator signs in in a browser: a wrong key gets the form again and
// nothing else; the right one the numbers, with no script error or CSP
// violation.
func TestOperatorPageInChromium(t *testing.T) {
	t.Parallel()
	s, host := operatorStack(t)
	browser := newBrowser(t)
	ctx, problems := newTab(t, browser)

	err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/ops"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("key"), "not-the-operator-key"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("form-error")),
	)
	if err != nil {
		t.Fatalf("%v (problems: %v)", err, problems())
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, `id="status"`) || strings.Contains(html, "ACCOUNT_LOCKED") || strings.Contains(html, host) {
		t.Fatalf("a wrong key shows the numbers:\n%s", html)
	}

	signIn := func() {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("key"), operatorKey),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("status")),
		); err != nil {
			t.Fatalf("%v (problems: %v)", err, problems())
		}
	}
	signIn()
	// One read of all the numbers: the page replaces them every 300 ms.
	shown := texts(t, ctx, "finished", "failure-codes", "failing-hosts", "links-pending")
	finished, codes, hosts := shown["finished"], shown["failure-codes"], shown["failing-hosts"]
	// ended in the last 1h: succeeded 1, failed 1, canceled 0, expired 0
	if !strings.Contains(strings.Join(strings.Fields(finished), " "), "last 1h 1 1 0 0") {
		t.Fatalf("links ended as shown: %q", finished)
	}
	if !strings.Contains(codes, "ACCOUNT_LOCKED") || !strings.Contains(hosts, host) || !strings.Contains(hosts, "500") {
		t.Fatalf("failures %q, failing hosts %q", codes, hosts)
	}
	if got := shown["links-pending"]; got != "1" {
		t.Fatalf("pending links: %q", got)
	}
	// The page refreshes itself: another link waits.
	newLink(t, s, s.APIKey, nil)
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.getElementById("links-pending").textContent === "2"`)); err != nil {
		t.Fatalf("the page did not refresh to 2 pending links: %v (problems: %v)", err, problems())
	}
	// The session cookie is not readable by scripts.
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cookies, "linkflow_ops") {
		t.Fatalf("document.cookie shows the session: %q", cookies)
	}
	// Sign out: the form again.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-form"))); err != nil {
		t.Fatal(err)
	}
	noProblems(t, signedOutRefresh(problems))

	// The session ends behind the page's back: its next refresh brings the
	// sign-in form, with no CSP violation on the way (a refresh answered
	// with a whole page used to break the page's style policy).
	signIn()
	if _, err := chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "linkflow_ops", URL: s.URL + "/ops"}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("login-form"))); err != nil {
		t.Fatalf("%v (problems: %v)", err, problems())
	}
	noProblems(t, signedOutRefresh(problems))
}

// signedOutRefresh leaves out of problems the one the browser logs when a
// refresh finds the session ended: the 401 it answers, on which the page
// reloads.
func signedOutRefresh(problems func() []string) func() []string {
	return func() []string {
		var left []string
		for _, p := range problems() {
			if !strings.Contains(p, "status of 401") || !strings.Contains(p, "/ops?part=status:") {
				left = append(left, p)
			}
		}
		return left
	}
}

// texts reads the text of the elements with the given ids in one go, as
// the page stood at one moment; a missing element reads as "".
func texts(t *testing.T, ctx context.Context, ids ...string) map[string]string {
	t.Helper()
	js, _ := json.Marshal(ids)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](string(js)+
		`.reduce(function (m, id) { var e = document.getElementById(id); m[id] = e ? e.innerText : ""; return m; }, {})`))
	if err != nil {
		t.Fatalf("text of %v: %v", ids, err)
	}
	return got
}
