package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/api"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/sdk"
)

// customerPage is a customer's page that loads the drop-in from the API
// (the pinned version, with its integrity hash) under a strict CSP with no
// inline styles, and records what it hears: the drop-in's callbacks in
// __calls, and every message any window posts to it in __messages.
const customerPage = `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer app</title>
<script src="%[1]s/sdk/v%[2]s/link.js" integrity="%[3]s" crossorigin="anonymous" nonce="n0nce"></script>
</head><body><h1>Customer app</h1><button id="connect" type="button">Connect</button>
<script nonce="n0nce">
window.__calls = []; window.__messages = [];
window.addEventListener("message", function (e) { window.__messages.push({ origin: e.origin, data: e.data }); });
window.openLink = function (url, mode) {
  return Linkflow.open({ url: url, mode: mode,
    onSuccess: function (e) { window.__calls.push({ cb: "success", e: e }); },
    onExit: function (e) { window.__calls.push({ cb: "exit", e: e }); },
    onEvent: function (e) { window.__calls.push({ cb: "event", e: e }); } }).linkId;
};
document.getElementById("connect").addEventListener("click", function () { openLink(window.__url, "popup"); });
</script></body></html>`

// newCustomer serves customerPage for the API at apiURL on another site
// than the API's: http://localhost:port while the API is at 127.0.0.1, so
// the drop-in's iframe is cross-site, as on a real customer's page. It
// returns the page's URL (which is also its origin).
func newCustomer(t *testing.T, apiURL string) string {
	t.Helper()
	esm, err := os.ReadFile("../sdk/js/link.mjs")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-n0nce' 'self' "+apiURL+
				"; style-src 'none'; frame-src "+apiURL+"; base-uri 'none'")
			fmt.Fprintf(w, customerPage, apiURL, sdk.Version, sdk.Integrity())
		case "/esm":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><title>esm</title><script type="module">
import Default, { Linkflow } from "/link.mjs";
window.__esm = Default === Linkflow && typeof Linkflow.open === "function" && Linkflow.version;
</script>`))
		case "/link.mjs":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			_, _ = w.Write(esm)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "http://localhost:" + port
}

// dropInCall is one of the drop-in's callbacks as the customer page
// recorded it.
type dropInCall struct {
	CB string `json:"cb"`
	E  struct {
		LinkID string  `json:"linkId"`
		Status *string `json:"status"`
		Stage  string  `json:"stage"`
		Reason string  `json:"reason"`
		Error  string  `json:"error"`
	} `json:"e"`
}

func (c dropInCall) String() string {
	st := "null"
	if c.E.Status != nil {
		st = *c.E.Status
	}
	return c.CB + ":" + c.E.Stage + c.E.Reason + "/" + st
}

// waitCall waits until the customer page has recorded a callback cb and
// returns every callback so far.
func waitCall(t *testing.T, ctx context.Context, cb string, problems func() []string) []dropInCall {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.__calls.some(function (c) { return c.cb === "`+cb+`"; })`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	calls := recordedCalls(t, ctx)
	if err != nil {
		t.Fatalf("no %s callback: %v; calls %v; problems %v", cb, err, calls, problems())
	}
	return calls
}

func recordedCalls(t *testing.T, ctx context.Context) []dropInCall {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.__calls)`))
	if err != nil {
		t.Fatal(err)
	}
	var calls []dropInCall
	if err := json.Unmarshal([]byte(raw), &calls); err != nil {
		t.Fatal(err)
	}
	return calls
}

// frameTarget waits for the target of the iframe (or popup) showing the
// link's page, other than those of skip, and returns a context that acts in
// it.
func frameTarget(t *testing.T, ctx context.Context, typ, urlPrefix string, skip ...target.ID) context.Context {
	t.Helper()
	var found target.ID
	testenv.Eventually(t, 15*time.Second, "a "+typ+" target at "+urlPrefix, func() bool {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if info.Type == typ && strings.HasPrefix(info.URL, urlPrefix) && !slices.Contains(skip, info.TargetID) {
				found = info.TargetID
				return true
			}
		}
		return false
	})
	fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(found))
	t.Cleanup(cancel)
	return fctx
}

// targets lists the ids of the browser's targets of type typ.
func targets(t *testing.T, ctx context.Context, typ string) []target.ID {
	t.Helper()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []target.ID
	for _, info := range infos {
		if info.Type == typ {
			ids = append(ids, info.TargetID)
		}
	}
	return ids
}

// checkMessages checks what the hosted page posted to the customer page:
// only linkflow's five fields, never the claim code; it returns how many.
func checkMessages(t *testing.T, ctx context.Context, apiURL, code string) int {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.__messages)`))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []struct {
		Origin string         `json:"origin"`
		Data   map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(raw), &msgs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, code) {
		t.Fatalf("a message carries the claim code: %s", raw)
	}
	for _, m := range msgs {
		if m.Origin != apiURL {
			t.Fatalf("a message from %s: %v", m.Origin, m.Data)
		}
		for k := range m.Data {
			if k != "source" && k != "type" && k != "linkId" && k != "status" && k != "stage" {
				t.Fatalf("a message carries %q: %v", k, m.Data)
			}
		}
	}
	return len(msgs)
}

func openDropIn(t *testing.T, ctx context.Context, customer string, l linkJSON, mode string) {
	t.Helper()
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`openLink(%q, %q)`, l.str("appClipUrl"), mode)))
	if err != nil || id != l.str("linkId") {
		t.Fatalf("Linkflow.open: %q, %v", id, err)
	}
}

func TestDropInInChromium(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil)
	customer := newCustomer(t, s.URL)
	if err := s.Store.UpdateOrg(context.Background(), s.OrgID, linkflow.OrgUpdate{AllowedOrigins: &[]string{"https://app.example.com", customer}}); err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t)
	start := func(t *testing.T) (context.Context, func() []string) {
		t.Helper()
		ctx, problems := newTab(t, browser)
		if err := chromedp.Do(ctx, chromedp.Navigate(customer+"/"), chromedp.WaitVisible(chromedp.ID("connect"))); err != nil {
			t.Fatal(err)
		}
		return ctx, problems
	}
	linkPage := s.URL + "/link/"

	t.Run("log in inside the modal and hear onSuccess", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, map[string]any{"returnUrl": "https://app.example.com/done"})
		ctx, problems := start(t)
		openDropIn(t, ctx, customer, l, "modal")
		frame := frameTarget(t, ctx, "iframe", linkPage+l.str("linkId"))
		logIn(t, frame)
		calls := waitCall(t, ctx, "success", problems)
		last := calls[len(calls)-1]
		if last.CB != "success" || last.E.LinkID != l.str("linkId") || last.E.Status == nil || *last.E.Status != "succeeded" {
			t.Fatalf("last call %+v; calls %v", last, calls)
		}
		// The stages in order (working may come twice: claimed, running).
		var stages []string
		for _, c := range calls[:len(calls)-1] {
			if c.CB != "event" || c.E.LinkID != l.str("linkId") {
				t.Fatalf("call %v before success", c)
			}
			if len(stages) == 0 || stages[len(stages)-1] != c.E.Stage {
				stages = append(stages, c.E.Stage)
			}
		}
		// working is missed when the link is done before the page after the
		// login shows it (the sandbox is quick).
		if got := strings.Join(stages, ","); got != "opened,submitted,working,finished" && got != "opened,submitted,finished" {
			t.Fatalf("stages %s (calls %v)", got, calls)
		}
		if got := waitLink(t, s, s.APIKey, l.str("linkId"), "succeeded"); got.str("status") != "succeeded" {
			t.Fatal(got)
		}
		// The modal is gone, the page scrolls again, nothing was posted
		// but linkflow's fields, and the iframe never went to the return URL.
		gone, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.querySelector("[data-linkflow]") && document.documentElement.style.overflow === ""`))
		if err != nil || !gone {
			t.Fatalf("the modal is still there: %v", err)
		}
		if n := checkMessages(t, ctx, s.URL, l.str("claimCode")); n < 4 { // opened, submitted, [working,] finished, success
			t.Fatalf("%d messages", n)
		}
		noProblems(t, problems)
	})

	t.Run("a callback that throws, and a second copy of the drop-in", func(t *testing.T) {
		t.Parallel()
		l1, l2, l3 := newLink(t, s, s.APIKey, nil), newLink(t, s, s.APIKey, nil), newLink(t, s, s.APIKey, nil)
		ctx, problems := start(t)
		modals := func() int {
			t.Helper()
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-linkflow="modal"]').length`))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// An onExit that throws runs inside the next open (which closes the
		// flow first): the next flow still opens, and the error is thrown
		// again on its own.
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`Linkflow.open({ url: %q,
			onExit: function () { throw new Error("the customer's bug"); } }).linkId`, l1.str("appClipUrl"))))
		if err != nil || id != l1.str("linkId") {
			t.Fatalf("first open: %q %v", id, err)
		}
		openDropIn(t, ctx, customer, l2, "modal")
		if n := modals(); n != 1 {
			t.Fatalf("%d modals after the second open", n)
		}
		testenv.Eventually(t, 10*time.Second, "the callback's error reported", func() bool {
			return strings.Contains(fmt.Sprint(problems()), "the customer's bug")
		})
		// A second copy of the drop-in (a bundle and a script tag): opening
		// from it closes the first copy's flow, and once it closes the page
		// scrolls again.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__first = Linkflow;
			var sc = document.createElement("script"); sc.src = "`+s.URL+`/sdk/link.js"; document.head.appendChild(sc); true`)); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.Linkflow !== window.__first`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("the second copy did not load: %v (%v)", err, problems())
		}
		if id, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`Linkflow.open({ url: %q }).linkId`, l3.str("appClipUrl")))); err != nil || id != l3.str("linkId") {
			t.Fatalf("open from the second copy: %q %v", id, err)
		}
		if n := modals(); n != 1 {
			t.Fatalf("%d modals once the second copy opened one", n)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-linkflow="close"]`))); err != nil {
			t.Fatal(err)
		}
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelectorAll('[data-linkflow="modal"]').length === 0 && document.documentElement.style.overflow === ""`))
		if err != nil || !ok {
			t.Fatalf("after closing, a modal is left or the page does not scroll: %v", err)
		}
	})

	t.Run("close the modal: the X, then Escape inside the page", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		ctx, problems := start(t)
		openDropIn(t, ctx, customer, l, "modal")
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.__calls.length > 0`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("no opened event: %v (%v)", err, problems())
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-linkflow="close"]`))); err != nil {
			t.Fatal(err)
		}
		calls := waitCall(t, ctx, "exit", problems)
		if got := fmt.Sprint(calls); got != "[event:opened/pending exit:closed/pending]" {
			t.Fatalf("calls %s", got)
		}
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("[data-linkflow]").length`)); err != nil || n != 0 {
			t.Fatalf("the modal is still there: %d (%v)", n, err)
		}
		// Again, and Escape pressed inside the hosted page (focus is in the
		// iframe, so the page tells the drop-in).
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__calls = []; true`)); err != nil {
			t.Fatal(err)
		}
		before := targets(t, ctx, "iframe") // the first frame's may linger
		openDropIn(t, ctx, customer, l, "modal")
		frame := frameTarget(t, ctx, "iframe", linkPage+l.str("linkId"), before...)
		if err := chromedp.Do(frame, chromedp.WaitVisible(chromedp.ID("username")), chromedp.Focus(chromedp.ID("username"))); err != nil {
			t.Fatal(err)
		}
		// The key's down closes the modal, and its iframe with it, before
		// its up is sent: an error here is the frame gone, as it should be.
		_ = chromedp.Do(frame, chromedp.KeyEvent(kb.Escape))
		calls = waitCall(t, ctx, "exit", problems)
		if got := fmt.Sprint(calls); got != "[event:opened/pending exit:closed/pending]" {
			t.Fatalf("calls %s", got)
		}
		if got := fetchLink(t, s, s.APIKey, l.str("linkId")); got.str("status") != "pending" {
			t.Fatalf("closing the drop-in changed the link: %s", got.str("status"))
		}
		noProblems(t, problems)
	})

	t.Run("a failed link stays open until the page's Close button", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		ctx, problems := start(t)
		openDropIn(t, ctx, customer, l, "modal")
		frame := frameTarget(t, ctx, "iframe", linkPage+l.str("linkId"))
		if err := chromedp.Do(frame,
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("username"), sandbox.UserLocked),
			chromedp.SendKeys(chromedp.ID("password"), sandbox.PasswordGood),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("close")),
		); err != nil {
			t.Fatal(err)
		}
		if title := text(t, frame, "outcome"); title != "Your account is locked" {
			t.Fatalf("outcome %q", title)
		}
		_ = chromedp.Do(frame, chromedp.Click(chromedp.ID("close"))) // the frame goes with the click
		calls := waitCall(t, ctx, "exit", problems)
		if got := fmt.Sprint(calls[len(calls)-2:]); got != "[event:finished/failed exit:closed/failed]" {
			t.Fatalf("calls %v", calls)
		}
		noProblems(t, problems)
	})

	t.Run("a link the page cannot show says why", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		wrong := strings.Replace(l.str("appClipUrl"), "code="+l.str("claimCode"), "code=clm_wrong", 1)
		if wrong == l.str("appClipUrl") {
			t.Fatalf("no code in %s", wrong)
		}
		ctx, problems := start(t)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`openLink(%q, "modal")`, wrong))); err != nil {
			t.Fatal(err)
		}
		calls := waitCall(t, ctx, "exit", problems)
		if len(calls) != 1 || calls[0].E.Reason != "error" || !strings.Contains(calls[0].E.Error, "not found") ||
			strings.Contains(calls[0].E.Error, "allowed origins") {
			t.Fatalf("calls %+v, want an error saying the link was not found", calls)
		}
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-linkflow="modal"]').length`)); err != nil || n != 0 {
			t.Fatalf("the modal is still there: %d (%v)", n, err)
		}
		noProblems(t, problems)
	})

	t.Run("an origin the organization did not allow", func(t *testing.T) {
		t.Parallel()
		org, key, _ := s.NewOrg(t, "Elsewhere")
		if err := s.Store.UpdateOrg(context.Background(), org, linkflow.OrgUpdate{AllowedOrigins: &[]string{"https://elsewhere.example"}}); err != nil {
			t.Fatal(err)
		}
		l := newLink(t, s, key, nil)
		ctx, problems := start(t)
		openDropIn(t, ctx, customer, l, "modal")
		calls := waitCall(t, ctx, "exit", problems)
		if len(calls) != 1 || calls[0].E.Reason != "error" || calls[0].E.Status != nil || !strings.Contains(calls[0].E.Error, customer) {
			t.Fatalf("calls %v (%+v)", calls, calls)
		}
		if n := checkMessages(t, ctx, s.URL, l.str("claimCode")); n != 0 {
			t.Fatalf("the refused page posted %d messages", n)
		}
		// The browser refused the frame: what it shows is not the page.
		for _, p := range problems() {
			if strings.Contains(p, "frame-ancestors") {
				return
			}
		}
		t.Fatalf("no frame-ancestors refusal reported: %v", problems())
	})

	t.Run("a phone: the modal takes the whole screen", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		ctx, problems := newTab(t, browser)
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait),
			chromedp.Navigate(customer+"/"), chromedp.WaitVisible(chromedp.ID("connect"))); err != nil {
			t.Fatal(err)
		}
		openDropIn(t, ctx, customer, l, "modal")
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.__calls.length > 0`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("no opened event: %v (%v)", err, problems())
		}
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function () {
  var f = document.querySelector('[data-linkflow="frame"]').getBoundingClientRect();
  var c = document.querySelector('[data-linkflow="close"]').getBoundingClientRect();
  return JSON.stringify({ w: innerWidth, h: innerHeight, f: [f.left, f.top, f.width, f.height], c: [c.left, c.top, c.width, c.height] });
})()`))
		if err != nil {
			t.Fatal(err)
		}
		var box struct {
			W, H float64
			F, C [4]float64
		}
		if err := json.Unmarshal([]byte(raw), &box); err != nil {
			t.Fatal(err)
		}
		if box.W != 390 || box.F != [4]float64{0, 0, 390, box.H} || box.H < 700 {
			t.Fatalf("viewport %vx%v, frame %v: not the whole screen", box.W, box.H, box.F)
		}
		if box.C[0]+box.C[2] > 390 || box.C[1] < 0 || box.C[2] < 32 {
			t.Fatalf("close button at %v", box.C)
		}
		frame := frameTarget(t, ctx, "iframe", linkPage+l.str("linkId"))
		width, err := chromedp.Run(frame, chromedp.Evaluate[float64](`document.documentElement.clientWidth`))
		if err != nil || width != 390 {
			t.Fatalf("the page inside is %v wide: %v", width, err)
		}
		noProblems(t, problems)
	})

	t.Run("popup", func(t *testing.T) {
		t.Parallel()
		l := newLink(t, s, s.APIKey, nil)
		ctx, problems := start(t)
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.__url = %q`, l.str("appClipUrl")))); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect"))); err != nil { // a click: popups need one
			t.Fatal(err)
		}
		win := frameTarget(t, ctx, "page", linkPage+l.str("linkId"))
		logIn(t, win)
		calls := waitCall(t, ctx, "success", problems)
		if last := calls[len(calls)-1]; last.E.LinkID != l.str("linkId") {
			t.Fatalf("calls %v", calls)
		}
		checkMessages(t, ctx, s.URL, l.str("claimCode"))
		noProblems(t, problems)
	})

	t.Run("the ES module", func(t *testing.T) {
		t.Parallel()
		ctx, problems := newTab(t, browser)
		if err := chromedp.Do(ctx, chromedp.Navigate(customer+"/esm")); err != nil {
			t.Fatal(err)
		}
		v, err := chromedp.Run(ctx, chromedp.Poll[string](`window.__esm`, chromedp.WithPollingTimeout(10*time.Second)))
		if err != nil || v != sdk.Version {
			t.Fatalf("link.mjs as a module: %q, %v (%v)", v, err, problems())
		}
	})
}

// logIn logs in with the sandbox's good account on the hosted page open in
// target.
func logIn(t *testing.T, target context.Context) {
	t.Helper()
	if err := chromedp.Do(target,
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("username"), "user_good"),
		chromedp.SendKeys(chromedp.ID("password"), "pass_good"),
		chromedp.Click(chromedp.ID("login")),
	); err != nil {
		t.Fatal(err)
	}
}

// A passing refusal (here the client's rate limit, Retry-After 5) of the
// link's page inside the drop-in's modal does not close the flow: the page
// says hello ("working") and loads the link's page again by itself.
func TestDropInStaysOpenThroughAPassingRefusal(t *testing.T) {
	t.Parallel()
	s := teststack.NewStack(t, teststack.StackOptions{API: func(c *api.Config) {
		c.ClientLimit, c.ClaimGuessLimit = api.Limit{Rate: 0.2, Burst: 1}, api.NoLimit
	}})
	customer := newCustomer(t, s.URL)
	if err := s.Store.UpdateOrg(context.Background(), s.OrgID, linkflow.OrgUpdate{AllowedOrigins: &[]string{customer}}); err != nil {
		t.Fatal(err)
	}
	ctx, problems := newTab(t, newBrowser(t))
	if err := chromedp.Do(ctx, chromedp.Navigate(customer+"/"), chromedp.WaitVisible(chromedp.ID("connect"))); err != nil {
		t.Fatal(err)
	}
	l := newLink(t, s, s.APIKey, nil)
	if p := getPage(t, s, "/link/"+l.str("linkId")+"?code="+url.QueryEscape(l.str("claimCode"))); p.status != http.StatusOK {
		t.Fatalf("the first page: %d", p.status) // the burst spent: the frame's first load is refused
	}
	openDropIn(t, ctx, customer, l, "modal")
	frame := frameTarget(t, ctx, "iframe", s.URL+"/link/"+l.str("linkId"))
	if err := chromedp.Do(frame, chromedp.WaitVisible(chromedp.ID("login-form"))); err != nil {
		t.Fatalf("the link's page did not show in the frame: %v; calls %v; problems %v", err, recordedCalls(t, ctx), problems())
	}
	calls := recordedCalls(t, ctx)
	var stages []string
	for _, c := range calls {
		if c.CB != "event" {
			t.Fatalf("call %v: the flow did not stay open (calls %v)", c, calls)
		}
		stages = append(stages, c.E.Stage)
	}
	if len(stages) == 0 || stages[0] != "working" {
		t.Fatalf("stages %v, want the refused page's working first", stages)
	}
	// The refused page's hello timer has run out (its reload came after
	// Retry-After, past the drop-in's 4 s): the modal is still there.
	open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("[data-linkflow]")`))
	if err != nil || !open {
		t.Fatalf("the modal is gone: %v; calls %v", err, calls)
	}
}
