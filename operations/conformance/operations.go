package conformance

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations/sandbox"
)

// The shapes results must have. The suite decodes into its own types so
// that it checks the documented contract, not the sandbox's Go types.
type paymentMethod struct {
	ID             string `json:"id"`
	Brand          string `json:"brand"`
	Last4          string `json:"last4"`
	ExpirationDate string `json:"expirationDate"`
	IsDefault      bool   `json:"isDefault"`
}

type statement struct {
	ID            string `json:"id"`
	StatementDate string `json:"statementDate"`
	DueDate       string `json:"dueDate"`
	AmountDue     int64  `json:"amountDue"`
	Currency      string `json:"currency"`
	Status        string `json:"status"`
	LineItems     []struct {
		Description string `json:"description"`
		Amount      int64  `json:"amount"`
	} `json:"lineItems"`
}

type profile struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type order struct {
	ID       string    `json:"id"`
	PlacedAt time.Time `json:"placedAt"`
	Items    []struct {
		Name      string `json:"name"`
		Quantity  int    `json:"quantity"`
		UnitPrice int64  `json:"unitPrice"`
	} `json:"items"`
	Subtotal    int64 `json:"subtotal"`
	DeliveryFee int64 `json:"deliveryFee"`
	ServiceFee  int64 `json:"serviceFee"`
	Tax         int64 `json:"tax"`
	Tip         int64 `json:"tip"`
	Total       int64 `json:"total"`
}

var (
	last4RE  = regexp.MustCompile(`^[0-9]{4}$`)
	expiryRE = regexp.MustCompile(`^(0[1-9]|1[0-2])/[0-9]{2}$`)
	// A JSON string of 13 to 19 digits looks like a card number.
	cardNumberRE = regexp.MustCompile(`"[0-9]{13,19}"`)
	brands       = map[string]bool{"visa": true, "mastercard": true, "amex": true, "discover": true, "unknown": true}
)

func (s *suite) testCatalog(t *testing.T) {
	in, _ := s.h.Registry.Integration(s.id)
	if in.DisplayName == "" || len(in.Resources) == 0 {
		t.Fatalf("integration %s: no display name or resources", s.id)
	}
	for _, r := range in.Resources {
		for _, a := range r.Actions {
			if a.Description == "" || a.ResultKey == "" || a.ResultDescription == "" {
				t.Errorf("%s %s: description, result key and result description are required", a.Name, r.Name)
			}
		}
	}
	for _, ra := range [][2]string{{sandbox.ResourcePaymentMethod, sandbox.ActionRead}, {sandbox.ResourcePaymentMethod, sandbox.ActionWrite}} {
		if !s.hasAction(ra[0], ra[1]) {
			t.Fatalf("missing %s %s", ra[1], ra[0])
		}
	}
	write := func(args string) []linkflow.Issue {
		return s.h.Registry.ValidateOperations(s.id, []linkflow.Operation{{
			Resource: sandbox.ResourcePaymentMethod, Action: sandbox.ActionWrite, Arguments: json.RawMessage(args),
		}})
	}
	if issues := write(s.cardArgs("4111111111111111")); len(issues) != 0 {
		t.Fatalf("a valid card was refused: %v", issues)
	}
	for name, args := range map[string]string{
		"Luhn":       `{"cardNumber":"4111111111111112","expirationDate":"12/99","cvv":"123","nameOnCard":"A","billingZip":"10001"}`,
		"past":       `{"cardNumber":"4111111111111111","expirationDate":"01/20","cvv":"123","nameOnCard":"A","billingZip":"10001"}`,
		"cvv":        `{"cardNumber":"4111111111111111","expirationDate":"12/99","cvv":"12","nameOnCard":"A","billingZip":"10001"}`,
		"zip":        `{"cardNumber":"4111111111111111","expirationDate":"12/99","cvv":"123","nameOnCard":"A","billingZip":"1000"}`,
		"missing":    `{"cardNumber":"4111111111111111"}`,
		"additional": `{"cardNumber":"4111111111111111","expirationDate":"12/99","cvv":"123","nameOnCard":"A","billingZip":"10001","pin":"1"}`,
	} {
		if issues := write(args); len(issues) == 0 {
			t.Errorf("%s: invalid arguments were accepted", name)
		}
	}
}

// checkResult checks the shape of a read's result by its result key.
func (s *suite) checkResult(t *testing.T, resource string, out json.RawMessage) {
	t.Helper()
	if cardNumberRE.Match(out) {
		t.Fatalf("%s: the result holds something like a card number: %s", resource, out)
	}
	act, _ := s.h.Registry.Action(s.id, resource, sandbox.ActionRead)
	switch act.ResultKey {
	case "paymentMethods":
		var pms []paymentMethod
		mustDecode(t, out, &pms)
		if len(pms) == 0 {
			t.Fatal("no payment methods")
		}
		for i, pm := range pms {
			checkCard(t, pm)
			if pm.IsDefault != (i == 0) {
				t.Fatalf("payment method %d: isDefault %v; the first and only the first is the default", i, pm.IsDefault)
			}
		}
	case "billing":
		var sts []statement
		mustDecode(t, out, &sts)
		if len(sts) != sandbox.DefaultStatementMonths {
			t.Fatalf("%d statements, want %d by default", len(sts), sandbox.DefaultStatementMonths)
		}
		for i, st := range sts {
			var sum int64
			for _, it := range st.LineItems {
				sum += it.Amount
			}
			if st.ID == "" || st.Currency == "" || len(st.LineItems) == 0 || (sum != st.AmountDue && st.AmountDue != 0) {
				t.Fatalf("statement %d: %+v (line items sum to %d)", i, st, sum)
			}
			due, err1 := time.Parse(time.DateOnly, st.DueDate)
			date, err2 := time.Parse(time.DateOnly, st.StatementDate)
			if err1 != nil || err2 != nil || !due.After(date) {
				t.Fatalf("statement %d: dates %q, %q", i, st.StatementDate, st.DueDate)
			}
			if i > 0 && st.StatementDate >= sts[i-1].StatementDate {
				t.Fatal("statements are not newest first")
			}
		}
	case "profile":
		var p profile
		mustDecode(t, out, &p)
		if p.Name == "" || p.Email == "" {
			t.Fatalf("profile %s", out)
		}
	case "orders":
		var os []order
		mustDecode(t, out, &os)
		if len(os) > sandbox.DefaultOrderLimit {
			t.Fatalf("%d orders, want at most %d by default", len(os), sandbox.DefaultOrderLimit)
		}
		for i, o := range os {
			checkOrder(t, o, s.h.Now())
			if i > 0 && !o.PlacedAt.Before(os[i-1].PlacedAt) {
				t.Fatal("orders are not newest first")
			}
		}
	default:
		var v any
		mustDecode(t, out, &v)
	}
}

func checkCard(t *testing.T, pm paymentMethod) {
	t.Helper()
	if pm.ID == "" || !brands[pm.Brand] || !last4RE.MatchString(pm.Last4) || !expiryRE.MatchString(pm.ExpirationDate) {
		t.Fatalf("payment method %+v", pm)
	}
}

func checkOrder(t *testing.T, o order, now time.Time) {
	t.Helper()
	var sub int64
	for _, it := range o.Items {
		sub += it.UnitPrice * int64(it.Quantity)
	}
	if o.ID == "" || len(o.Items) == 0 || sub != o.Subtotal || o.PlacedAt.After(now) ||
		o.Total != o.Subtotal+o.DeliveryFee+o.ServiceFee+o.Tax+o.Tip {
		t.Fatalf("order %+v", o)
	}
}

func mustDecode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("result %s: %v", raw, err)
	}
}

func (s *suite) testReads(t *testing.T) {
	res := s.login(t, uniqueUser(t))
	for _, resource := range s.readActions() {
		out := s.mustExec(t, res.SessionID, resource, sandbox.ActionRead, "", "", nil)
		s.checkResult(t, resource, out)
		// An empty object means the same as no arguments.
		again := s.mustExec(t, res.SessionID, resource, sandbox.ActionRead, "{}", "", nil)
		if !jsonEqual(out, again) {
			t.Fatalf("%s: {} and no arguments differ", resource)
		}
	}
	_, err := s.exec(ctxFor(t), res.SessionID, "noSuchResource", sandbox.ActionRead, "", "")
	wantError(t, err, linkflow.FailureRejected)
}

func (s *suite) testReadArguments(t *testing.T) {
	res := s.login(t, uniqueUser(t))
	if s.hasAction(sandbox.ResourceBillingStatement, sandbox.ActionRead) {
		var sts []statement
		s.mustExec(t, res.SessionID, sandbox.ResourceBillingStatement, sandbox.ActionRead, `{"months":12}`, "", &sts)
		if len(sts) != 12 {
			t.Fatalf("%d statements, want 12", len(sts))
		}
		var three []statement
		s.mustExec(t, res.SessionID, sandbox.ResourceBillingStatement, sandbox.ActionRead, `{"months":3}`, "", &three)
		if fmt.Sprint(three) != fmt.Sprint(sts[:3]) {
			t.Fatal("a month's statement depends on how many months were asked for")
		}
		_, err := s.exec(ctxFor(t), res.SessionID, sandbox.ResourceBillingStatement, sandbox.ActionRead, `{"months":25}`, "")
		wantError(t, err, linkflow.FailureRejected)
	}
	if s.hasAction(sandbox.ResourceOrderHistory, sandbox.ActionRead) {
		var all []order
		s.mustExec(t, res.SessionID, sandbox.ResourceOrderHistory, sandbox.ActionRead, `{"limit":100}`, "", &all)
		if len(all) < 10 {
			t.Fatalf("only %d orders in the history", len(all))
		}
		var five []order
		s.mustExec(t, res.SessionID, sandbox.ResourceOrderHistory, sandbox.ActionRead, `{"limit":5}`, "", &five)
		if len(five) != 5 || five[0].ID != all[0].ID {
			t.Fatalf("limit 5 gave %d orders", len(five))
		}
		since := all[9].PlacedAt.UTC().Format(time.DateOnly)
		var recent []order
		s.mustExec(t, res.SessionID, sandbox.ResourceOrderHistory, sandbox.ActionRead, fmt.Sprintf(`{"since":%q,"limit":100}`, since), "", &recent)
		if len(recent) < 10 {
			t.Fatalf("since %s gave %d orders, want at least 10", since, len(recent))
		}
		for _, o := range recent {
			if o.PlacedAt.UTC().Format(time.DateOnly) < since {
				t.Fatalf("order of %v is before %s", o.PlacedAt, since)
			}
		}
	}
}

func (s *suite) testDeterministic(t *testing.T) {
	user := uniqueUser(t)
	a, b := s.login(t, user), s.login(t, user)
	other := s.login(t, uniqueUser(t))
	differs := false
	for _, resource := range s.readActions() {
		x := s.mustExec(t, a.SessionID, resource, sandbox.ActionRead, "", "", nil)
		y := s.mustExec(t, b.SessionID, resource, sandbox.ActionRead, "", "", nil)
		if !jsonEqual(x, y) {
			t.Fatalf("%s: two reads of one account differ:\n%s\n%s", resource, x, y)
		}
		z := s.mustExec(t, other.SessionID, resource, sandbox.ActionRead, "", "", nil)
		differs = differs || !jsonEqual(x, z)
	}
	if !differs {
		t.Fatal("two accounts have the same data")
	}
	if a.DisplayName != b.DisplayName {
		t.Fatalf("display names %q and %q", a.DisplayName, b.DisplayName)
	}
}

func (s *suite) testWriteThenRead(t *testing.T) {
	user := uniqueUser(t)
	res := s.login(t, user)
	var before []paymentMethod
	s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "", &before)

	for i, c := range []struct{ number, brand string }{
		{"5555555555554444", "mastercard"},
		{"378282246310005", "amex"},
		{"6011111111111117", "discover"},
		{"4242424242424242", "visa"},
	} {
		var pm paymentMethod
		out := s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionWrite, s.cardArgs(c.number), fmt.Sprintf("link_w:%d", i), &pm)
		checkCard(t, pm)
		if pm.Brand != c.brand || pm.Last4 != c.number[len(c.number)-4:] || pm.ExpirationDate != s.futureExpiry() || !pm.IsDefault {
			t.Fatalf("write result %+v", pm)
		}
		if cardNumberRE.Match(out) || strings.Contains(string(out), c.number) || strings.Contains(string(out), `"123"`) || strings.Contains(string(out), "cvv") {
			t.Fatalf("the write result holds the card number or the CVV: %s", out)
		}
	}
	var after []paymentMethod
	s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "", &after)
	if len(after) != len(before)+4 {
		t.Fatalf("%d payment methods after 4 writes, %d before", len(after), len(before))
	}
	if after[0].Last4 != "4242" || !after[0].IsDefault || after[1].Last4 != "1117" || after[1].IsDefault {
		t.Fatalf("the newest card is not first and the default: %+v", after[:2])
	}
	// Another session of the same account sees the card; another account
	// does not.
	var same, other []paymentMethod
	s.mustExec(t, s.login(t, user).SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "", &same)
	if fmt.Sprint(same) != fmt.Sprint(after) {
		t.Fatalf("another session of the account reads %+v, want %+v", same, after)
	}
	stranger := uniqueUser(t)
	s.mustExec(t, s.login(t, stranger).SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "", &other)
	for _, pm := range other {
		if pm.ID == after[0].ID {
			t.Fatal("a write to one account shows in another")
		}
	}
	if keys, ok := s.writeLogKeys(t, user); ok && fmt.Sprint(keys) != "[link_w:0 link_w:1 link_w:2 link_w:3]" {
		t.Fatalf("write log keys %v", keys)
	}
	if keys, ok := s.writeLogKeys(t, stranger); ok && len(keys) != 0 {
		t.Fatalf("write log of an untouched account: %v", keys)
	}
}

func (s *suite) testIdempotentWrite(t *testing.T) {
	user := uniqueUser(t)
	res := s.login(t, user)
	first := s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionWrite, s.cardArgs("4242424242424242"), "link_i:1", nil)
	// The same key returns the first result, even with other arguments.
	second := s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionWrite, s.cardArgs("5555555555554444"), "link_i:1", nil)
	if !jsonEqual(first, second) {
		t.Fatalf("a repeated key gave another result:\n%s\n%s", first, second)
	}
	var pms []paymentMethod
	s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "", &pms)
	n := 0
	for _, pm := range pms {
		if pm.Last4 == "4242" || pm.Last4 == "4444" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d cards written for one key", n)
	}
	if keys, ok := s.writeLogKeys(t, user); ok && (len(keys) != 1 || keys[0] != "link_i:1") {
		t.Fatalf("write log keys %v, want [link_i:1]", keys)
	}
	_, err := s.exec(ctxFor(t), res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionWrite, s.cardArgs("4242424242424242"), "")
	wantError(t, err, linkflow.FailureRejected)
}

func (s *suite) testConcurrentWrites(t *testing.T) {
	user := uniqueUser(t)
	sessions := []string{s.login(t, user).SessionID, s.login(t, user).SessionID}
	const writers = 8
	outs := make([]json.RawMessage, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	ctx := ctxFor(t)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = s.exec(ctx, sessions[i%2], sandbox.ResourcePaymentMethod, sandbox.ActionWrite,
				s.cardArgs(fmt.Sprint([]string{"4242424242424242", "5555555555554444"}[i%2])), "link_c:0")
		}()
	}
	wg.Wait()
	for i := range writers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !jsonEqual(outs[i], outs[0]) {
			t.Fatalf("racing writes with one key returned different results:\n%s\n%s", outs[0], outs[i])
		}
	}
	if keys, ok := s.writeLogKeys(t, user); ok && len(keys) != 1 {
		t.Fatalf("write log keys %v, want one entry", keys)
	}
}

func (s *suite) testDeclined(t *testing.T) {
	user := uniqueUser(t)
	res := s.login(t, user)
	_, err := s.exec(ctxFor(t), res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionWrite, s.cardArgs(sandbox.CardDeclined), "link_d:0")
	wantError(t, err, linkflow.FailureDeclined)
	var pms []paymentMethod
	s.mustExec(t, res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionRead, "", "", &pms)
	for _, pm := range pms {
		if pm.Last4 == "0002" && pm.Brand == "visa" && pm.IsDefault {
			t.Fatal("a declined card became the default")
		}
	}
	if keys, ok := s.writeLogKeys(t, user); ok && len(keys) != 0 {
		t.Fatalf("a declined write was logged: %v", keys)
	}
}

func (s *suite) testRejects(t *testing.T) {
	res := s.login(t, uniqueUser(t))
	for name, args := range map[string]string{
		"Luhn":     `{"cardNumber":"4111111111111112","expirationDate":"12/99","cvv":"123","nameOnCard":"A","billingZip":"10001"}`,
		"past":     `{"cardNumber":"4111111111111111","expirationDate":"01/20","cvv":"123","nameOnCard":"A","billingZip":"10001"}`,
		"missing":  `{"cardNumber":"4111111111111111"}`,
		"unknown":  `{"cardNumber":"4111111111111111","expirationDate":"12/99","cvv":"123","nameOnCard":"A","billingZip":"10001","pin":"1"}`,
		"not JSON": `[1,2]`,
	} {
		_, err := s.exec(ctxFor(t), res.SessionID, sandbox.ResourcePaymentMethod, sandbox.ActionWrite, args, "link_r:"+name)
		if err == nil {
			t.Fatalf("%s: invalid arguments were accepted", name)
		}
		wantError(t, err, linkflow.FailureRejected)
	}
}
