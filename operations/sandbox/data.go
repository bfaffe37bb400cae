package sandbox

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// The sandbox's data is made up, but made up the same way every time: each
// account is seeded by (integration, username), and each month or day of its
// history by that seed and the month or day. A read needs no storage unless a
// write changed the account, and a statement for March is the same whether a
// link asked for 3 months or 12.

// PaymentMethod is a saved card as reads and writes return it: brand, last
// four digits and expiry, never the full number or the CVV.
type PaymentMethod struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	Brand          string    `json:"brand"`
	Last4          string    `json:"last4"`
	ExpirationDate string    `json:"expirationDate"`
	IsDefault      bool      `json:"isDefault"`
	AddedAt        time.Time `json:"addedAt"`
}

// Address is a postal address.
type Address struct {
	Line1      string `json:"line1"`
	City       string `json:"city"`
	State      string `json:"state"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

// Plan is a mobile plan. MonthlyCharge is in cents.
type Plan struct {
	Name          string `json:"name"`
	Lines         int    `json:"lines"`
	MonthlyCharge int64  `json:"monthlyCharge"`
	Currency      string `json:"currency"`
}

// Profile is the account holder and, at a carrier, the plan.
type Profile struct {
	AccountNumber string  `json:"accountNumber"`
	Name          string  `json:"name"`
	Email         string  `json:"email"`
	Phone         string  `json:"phone"`
	Address       Address `json:"address"`
	Plan          *Plan   `json:"plan,omitempty"`
	MemberSince   string  `json:"memberSince"`
	Status        string  `json:"status"`
}

// account is the seed of one (integration, username).
type account struct {
	integration string
	username    string
	seed        uint64
}

func newAccount(integration, username string) account {
	h := fnv.New64a()
	h.Write([]byte(integration))
	h.Write([]byte{0})
	h.Write([]byte(username))
	return account{integration: integration, username: username, seed: h.Sum64()}
}

// Salts keep the streams of one account apart.
const (
	saltProfile uint64 = iota + 1
	saltCards
	saltBilling
	saltMonth
	saltOrders
	saltDay
)

func (a account) rng(salt uint64) *rand.Rand { return rand.New(rand.NewPCG(a.seed, salt)) }

// id returns a stable id for the account's thing named by salt and n.
func (a account) id(prefix string, salt, n uint64) string {
	return fmt.Sprintf("%s%016x", prefix, splitmix(a.seed^splitmix(salt<<32^n)))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

var (
	firstNames = []string{"Jordan", "Avery", "Maria", "James", "Priya", "Wei", "Olivia", "Mateo", "Aisha",
		"Noah", "Emma", "Liam", "Sofia", "Ethan", "Chloe", "Daniel", "Grace", "Samuel", "Hana", "Lucas",
		"Zoe", "Omar", "Isabella", "Kenji", "Fatima", "Benjamin", "Nora", "Diego", "Leah", "Marcus"}
	lastNames = []string{"Smith", "Johnson", "Garcia", "Nguyen", "Patel", "Kim", "Brown", "Martinez",
		"Lee", "Davis", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Chen",
		"White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright"}
	streets = []string{"Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Park Blvd", "Elm St", "Washington Ave",
		"Lake Rd", "Hillcrest Dr", "Sunset Blvd", "River Rd", "2nd St", "Pine St", "Highland Ave"}
	cities = []struct{ name, state, zip, area string }{
		{"New York", "NY", "100", "212"}, {"Brooklyn", "NY", "112", "718"}, {"Los Angeles", "CA", "900", "213"},
		{"San Francisco", "CA", "941", "415"}, {"Chicago", "IL", "606", "312"}, {"Houston", "TX", "770", "713"},
		{"Austin", "TX", "787", "512"}, {"Seattle", "WA", "981", "206"}, {"Denver", "CO", "802", "303"},
		{"Miami", "FL", "331", "305"}, {"Atlanta", "GA", "303", "404"}, {"Boston", "MA", "021", "617"},
		{"Phoenix", "AZ", "850", "602"}, {"Portland", "OR", "972", "503"}, {"Nashville", "TN", "372", "615"},
	}
)

// profile returns the account holder. Carriers add an account number and
// plan. It is made once per account (profiles).
func (a account) profile() Profile {
	profiles.mu.Lock()
	p, ok := profiles.m[a.seed]
	profiles.mu.Unlock()
	if ok {
		return p
	}
	p = a.makeProfile()
	profiles.mu.Lock()
	if len(profiles.m) >= memoMax {
		profiles.m = map[uint64]Profile{}
	}
	profiles.m[a.seed] = p
	profiles.mu.Unlock()
	return p
}

// profiles are the profiles made so far, by account seed.
var profiles = struct {
	mu sync.Mutex
	m  map[uint64]Profile
}{m: map[uint64]Profile{}}

func (a account) makeProfile() Profile {
	r := a.rng(saltProfile)
	first, last := pick(r, firstNames), pick(r, lastNames)
	c := pick(r, cities)
	p := Profile{
		Name:  first + " " + last,
		Email: fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(first), strings.ToLower(last), r.IntN(90)+10),
		// 555-0100 to 555-0199 are reserved for fiction.
		Phone: fmt.Sprintf("+1 %s-555-01%02d", c.area, r.IntN(100)),
		Address: Address{
			Line1:      fmt.Sprintf("%d %s", r.IntN(9800)+100, pick(r, streets)),
			City:       c.name,
			State:      c.state,
			PostalCode: fmt.Sprintf("%s%02d", c.zip, r.IntN(100)),
			Country:    "US",
		},
		MemberSince: time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(12*365)).Format(time.DateOnly),
		Status:      "active",
	}
	if plans, ok := carrierPlans[a.integration]; ok {
		p.AccountNumber = fmt.Sprintf("%09d", r.IntN(1_000_000_000))
		pl := plans[r.IntN(len(plans))]
		lines := 1 + r.IntN(len(pl.perLines))
		p.Plan = &Plan{Name: pl.name, Lines: lines, MonthlyCharge: pl.perLines[lines-1], Currency: "USD"}
	}
	return p
}

// baseCards returns the cards the account had before any write: one or two,
// the first the default. An expiry that passed rolls forward by four years,
// as a reissued card's would.
func (a account) baseCards(now time.Time) []PaymentMethod {
	r := a.rng(saltCards)
	brands := []struct {
		brand string
		w     int
	}{{BrandVisa, 5}, {BrandMastercard, 3}, {BrandAmex, 1}, {BrandDiscover, 1}}
	n := 1 + r.IntN(2)
	out := make([]PaymentMethod, n)
	member, _ := time.Parse(time.DateOnly, a.profile().MemberSince)
	for i := range out {
		brand, w := BrandVisa, r.IntN(10)
		for _, b := range brands {
			if w < b.w {
				brand = b.brand
				break
			}
			w -= b.w
		}
		month, year := 1+r.IntN(12), 2026+r.IntN(4)
		for year < now.Year() || (year == now.Year() && time.Month(month) < now.Month()) {
			year += 4
		}
		out[i] = PaymentMethod{
			ID:             a.id("pm_", saltCards, uint64(i)),
			Type:           "card",
			Brand:          brand,
			Last4:          fmt.Sprintf("%04d", r.IntN(10000)),
			ExpirationDate: fmt.Sprintf("%02d/%02d", month, year%100),
			IsDefault:      i == 0,
			AddedAt:        member.AddDate(0, 0, r.IntN(400)).Add(time.Duration(r.IntN(86400)) * time.Second),
		}
	}
	return out
}
