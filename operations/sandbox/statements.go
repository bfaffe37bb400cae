package sandbox

import (
	"fmt"
	"time"
)

// Statement is one monthly bill. Amounts are in cents of Currency; the line
// items add up to AmountDue. Dates are YYYY-MM-DD.
type Statement struct {
	ID            string     `json:"id"`
	AccountNumber string     `json:"accountNumber"`
	PeriodStart   string     `json:"periodStart"`
	PeriodEnd     string     `json:"periodEnd"`
	StatementDate string     `json:"statementDate"`
	DueDate       string     `json:"dueDate"`
	AmountDue     int64      `json:"amountDue"`
	Currency      string     `json:"currency"`
	Status        string     `json:"status"`
	PaidAt        string     `json:"paidAt,omitempty"`
	AutoPay       bool       `json:"autoPay"`
	LineItems     []LineItem `json:"lineItems"`
}

// LineItem is one charge or credit on a statement (credits are negative).
type LineItem struct {
	Description string `json:"description"`
	Category    string `json:"category"`
	Amount      int64  `json:"amount"`
}

type carrierPlan struct {
	name     string
	perLines []int64 // monthly charge for 1, 2, ... lines, in cents
}

var carrierPlans = map[string][]carrierPlan{
	"tmobile": {
		{"Essentials", []int64{6000, 9000, 9000, 10000}},
		{"Go5G", []int64{7500, 13000, 14000, 16000}},
		{"Go5G Plus", []int64{9000, 15000, 17000, 20000}},
		{"Magenta MAX", []int64{8500, 14000, 15000, 17000}},
	},
	"att": {
		{"Unlimited Starter", []int64{6500, 12000, 13500, 14000}},
		{"Unlimited Extra", []int64{7500, 14000, 15000, 16000}},
		{"Unlimited Premium", []int64{8500, 16000, 18000, 20000}},
	},
	"verizon": {
		{"Unlimited Welcome", []int64{6500, 11000, 12000, 13000}},
		{"Unlimited Plus", []int64{8000, 14000, 16000, 18000}},
		{"Unlimited Ultimate", []int64{9000, 16000, 18000, 20000}},
	},
}

var devices = []struct {
	name    string
	monthly int64
}{
	{"iPhone 16", 3330}, {"iPhone 16 Pro", 4163}, {"iPhone 15", 2916}, {"Galaxy S25", 3333},
	{"Galaxy S24 FE", 2708}, {"Pixel 9", 3333}, {"Pixel 9a", 2083}, {"Apple Watch Series 10", 1666},
}

// billing describes an account's standing bill: the cycle day, autopay, and
// the phones on financing. Each financed line buys a device every 30 months
// and pays it off in 24 monthly installments, so a statement shows an
// installment in most months and none in the six after a payoff.
type billing struct {
	cycleDay int
	autoPay  bool
	taxRate  int64 // per mille of taxable charges
	financed []int // each line's upgrade offset, in months
}

const upgradeCycle = 30

func (a account) billing() billing {
	r := a.rng(saltBilling)
	b := billing{cycleDay: 1 + r.IntN(28), autoPay: r.IntN(10) < 6, taxRate: int64(70 + r.IntN(60))}
	for range r.IntN(3) {
		b.financed = append(b.financed, r.IntN(upgradeCycle))
	}
	return b
}

func monthIndex(t time.Time) int { return t.Year()*12 + int(t.Month()) - 1 }

// statements returns the account's last n statements, newest first.
func (a account) statements(now time.Time, n int) []Statement {
	p := a.profile()
	b := a.billing()
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	latest := time.Date(now.Year(), now.Month(), b.cycleDay, 0, 0, 0, 0, time.UTC)
	if latest.After(today) {
		latest = latest.AddDate(0, -1, 0)
	}
	out := make([]Statement, n)
	for i := range out {
		date := latest.AddDate(0, -i, 0)
		out[i] = a.statement(p, b, date, today)
	}
	return out
}

func (a account) statement(p Profile, b billing, date, today time.Time) Statement {
	mi := monthIndex(date)
	r := a.rng(saltMonth<<32 ^ uint64(mi))
	var items []LineItem
	items = append(items, LineItem{
		Description: fmt.Sprintf("%s, %d line%s", p.Plan.Name, p.Plan.Lines, plural(p.Plan.Lines)),
		Category:    "plan", Amount: p.Plan.MonthlyCharge,
	})
	taxable := p.Plan.MonthlyCharge
	for j, offset := range b.financed {
		since := mi - offset
		if k := since%upgradeCycle + 1; k <= 24 {
			d := devices[splitmix(a.seed^uint64(j)<<40^uint64(since/upgradeCycle))%uint64(len(devices))]
			items = append(items, LineItem{
				Description: fmt.Sprintf("%s, installment %d of 24", d.name, k),
				Category:    "device", Amount: d.monthly,
			})
		}
	}
	switch x := r.IntN(100); {
	case x < 10:
		amt := int64(1000 + 500*r.IntN(9))
		items = append(items, LineItem{Description: "International travel pass", Category: "usage", Amount: amt})
		taxable += amt
	case x < 18:
		items = append(items, LineItem{Description: "Extra high-speed data, 5 GB", Category: "usage", Amount: 1500})
		taxable += 1500
	case x < 22:
		items = append(items, LineItem{Description: "Loyalty credit", Category: "credit", Amount: -500})
	}
	if b.autoPay {
		items = append(items, LineItem{Description: "AutoPay discount", Category: "discount", Amount: -500 * int64(p.Plan.Lines)})
	}
	items = append(items, LineItem{
		Description: "Taxes, fees and surcharges", Category: "taxes",
		Amount: taxable * b.taxRate / 1000,
	})
	var total int64
	for _, it := range items {
		total += it.Amount
	}
	due := date.AddDate(0, 0, 21)
	st := Statement{
		ID:            a.id("stmt_", saltMonth, uint64(mi)),
		AccountNumber: p.AccountNumber,
		PeriodStart:   date.AddDate(0, -1, 0).Format(time.DateOnly),
		PeriodEnd:     date.AddDate(0, 0, -1).Format(time.DateOnly),
		StatementDate: date.Format(time.DateOnly),
		DueDate:       due.Format(time.DateOnly),
		AmountDue:     max(total, 0),
		Currency:      "USD",
		Status:        "due",
		AutoPay:       b.autoPay,
		LineItems:     items,
	}
	paid := due
	if !b.autoPay {
		paid = due.AddDate(0, 0, -r.IntN(10))
	}
	if !paid.After(today) {
		st.Status, st.PaidAt = "paid", paid.Format(time.DateOnly)
	}
	return st
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
