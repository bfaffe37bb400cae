package sandbox

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestCardBrand(t *testing.T) {
	t.Parallel()
	for number, want := range map[string]string{
		"4111111111111111": BrandVisa, "4000000000000002": BrandVisa,
		"5555555555554444": BrandMastercard, "2223003122003222": BrandMastercard, "2720990000000007": BrandMastercard,
		"378282246310005": BrandAmex, "341111111111111": BrandAmex,
		"6011111111111117": BrandDiscover, "6500000000000002": BrandDiscover, "6445644564456445": BrandDiscover,
		"3530111333300000": BrandUnknown, "2721000000000000": BrandUnknown, "": BrandUnknown,
	} {
		if got := CardBrand(number); got != want {
			t.Errorf("CardBrand(%q) = %s, want %s", number, got, want)
		}
	}
}

// A month's statement is the same whatever the day the account is read and
// however many months are asked for; statements follow each other without
// gaps, and their line items add up.
func TestStatementsAreStable(t *testing.T) {
	t.Parallel()
	for i := range 20 {
		a := newAccount(TMobile, fmt.Sprint("user", i))
		now := time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC)
		long := a.statements(now, 24)
		if short := a.statements(now.AddDate(0, 0, -1), 3); !reflect.DeepEqual(short[1:], long[1:3]) {
			t.Fatalf("%s: statements changed from one day to the next", a.username)
		}
		// Weeks later, the statement is still there, unchanged but for its
		// payment.
		found := false
		for _, st := range a.statements(now.AddDate(0, 0, 40), 3) {
			if st.ID == long[0].ID {
				found = true
				if st.AmountDue != long[0].AmountDue || !reflect.DeepEqual(st.LineItems, long[0].LineItems) {
					t.Fatalf("%s: a statement changed weeks later", a.username)
				}
			}
		}
		if !found {
			t.Fatalf("%s: the newest statement is gone weeks later", a.username)
		}
		for j, st := range long {
			var sum int64
			for _, it := range st.LineItems {
				sum += it.Amount
			}
			if sum != st.AmountDue || sum <= 0 {
				t.Fatalf("%s: statement %d sums to %d, says %d", a.username, j, sum, st.AmountDue)
			}
			date, _ := time.Parse(time.DateOnly, st.StatementDate)
			end, _ := time.Parse(time.DateOnly, st.PeriodEnd)
			if !end.AddDate(0, 0, 1).Equal(date) || date.After(now) {
				t.Fatalf("%s: statement %d period ends %s, dated %s", a.username, j, st.PeriodEnd, st.StatementDate)
			}
			if j > 0 && long[j-1].PeriodStart != st.StatementDate {
				t.Fatalf("%s: a gap before statement %d", a.username, j)
			}
			if (st.Status == "paid") == (st.PaidAt == "") {
				t.Fatalf("%s: statement %d is %s, paid %q", a.username, j, st.Status, st.PaidAt)
			}
		}
	}
}

func TestOrdersAreStable(t *testing.T) {
	t.Parallel()
	for i := range 20 {
		a := newAccount(UberEats, fmt.Sprint("user", i))
		now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
		today := a.orders(now, time.Time{}, 100)
		tomorrow := a.orders(now.Add(24*time.Hour), time.Time{}, 100)
		// Tomorrow's history holds today's, plus what was ordered since.
		k := 0
		for k < len(tomorrow) && tomorrow[k].PlacedAt.After(now) {
			k++
		}
		n := min(len(today), len(tomorrow)-k)
		if n < 20 || !reflect.DeepEqual(today[:n-1], tomorrow[k:k+n-1]) {
			t.Fatalf("%s: the history changed overnight (%d orders)", a.username, n)
		}
		since := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		for _, o := range a.orders(now, since, 100) {
			if o.PlacedAt.Before(since) || o.PlacedAt.After(now) {
				t.Fatalf("%s: order placed %v", a.username, o.PlacedAt)
			}
		}
		if got := a.orders(now, time.Time{}, 5); !reflect.DeepEqual(got, today[:5]) {
			t.Fatalf("%s: limit 5 is not the newest 5", a.username)
		}
	}
}

func TestBaseCardsNeverExpired(t *testing.T) {
	t.Parallel()
	for i := range 50 {
		a := newAccount(ATT, fmt.Sprint("user", i))
		for _, now := range []time.Time{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2041, 12, 31, 0, 0, 0, 0, time.UTC)} {
			for _, pm := range a.baseCards(now) {
				var m, y int
				fmt.Sscanf(pm.ExpirationDate, "%d/%d", &m, &y)
				if 2000+y < now.Year() || (2000+y == now.Year() && time.Month(m) < now.Month()) {
					t.Fatalf("%s: card expired %s at %v", a.username, pm.ExpirationDate, now)
				}
			}
		}
	}
}
