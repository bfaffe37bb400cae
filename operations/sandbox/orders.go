package sandbox

import (
	"time"
)

// Order is a past food order. Amounts are in cents of Currency.
type Order struct {
	ID              string      `json:"id"`
	Status          string      `json:"status"`
	PlacedAt        time.Time   `json:"placedAt"`
	DeliveredAt     time.Time   `json:"deliveredAt,omitzero"`
	Restaurant      Restaurant  `json:"restaurant"`
	Items           []OrderItem `json:"items"`
	Subtotal        int64       `json:"subtotal"`
	DeliveryFee     int64       `json:"deliveryFee"`
	ServiceFee      int64       `json:"serviceFee"`
	Tax             int64       `json:"tax"`
	Tip             int64       `json:"tip"`
	Total           int64       `json:"total"`
	Currency        string      `json:"currency"`
	DeliveryAddress Address     `json:"deliveryAddress"`
}

// Restaurant is where an order came from.
type Restaurant struct {
	Name    string `json:"name"`
	Cuisine string `json:"cuisine"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

type menuItem struct {
	name  string
	price int64
}

var restaurants = []struct {
	Restaurant
	menu []menuItem
}{
	{Restaurant{"Golden Dragon", "Chinese"}, []menuItem{{"General Tso's Chicken", 1595}, {"Vegetable Lo Mein", 1295}, {"Pork Dumplings (6)", 895}, {"Hot and Sour Soup", 595}}},
	{Restaurant{"Bella Napoli Pizzeria", "Pizza"}, []menuItem{{"Margherita Pizza", 1699}, {"Pepperoni Pizza", 1899}, {"Caesar Salad", 1099}, {"Garlic Knots", 699}}},
	{Restaurant{"Taqueria El Sol", "Mexican"}, []menuItem{{"Carne Asada Burrito", 1349}, {"Chicken Tacos (3)", 1199}, {"Chips and Guacamole", 799}, {"Horchata", 399}}},
	{Restaurant{"Sakura Sushi", "Japanese"}, []menuItem{{"Spicy Tuna Roll", 1095}, {"Salmon Nigiri (2)", 895}, {"Chicken Teriyaki Bento", 1795}, {"Miso Soup", 395}}},
	{Restaurant{"Burger Barn", "American"}, []menuItem{{"Classic Cheeseburger", 1249}, {"Bacon Double Burger", 1549}, {"Fries", 499}, {"Chocolate Shake", 699}}},
	{Restaurant{"Saffron Kitchen", "Indian"}, []menuItem{{"Chicken Tikka Masala", 1795}, {"Saag Paneer", 1595}, {"Garlic Naan", 499}, {"Mango Lassi", 499}}},
	{Restaurant{"Pho Saigon", "Vietnamese"}, []menuItem{{"Pho Tai", 1450}, {"Banh Mi", 1095}, {"Spring Rolls (2)", 750}, {"Vietnamese Iced Coffee", 550}}},
	{Restaurant{"Green Bowl", "Salads"}, []menuItem{{"Harvest Bowl", 1495}, {"Kale Caesar", 1295}, {"Protein Plate", 1595}, {"Lemonade", 450}}},
	{Restaurant{"Olive & Thyme", "Mediterranean"}, []menuItem{{"Chicken Shawarma Plate", 1695}, {"Falafel Wrap", 1195}, {"Hummus and Pita", 795}, {"Baklava", 495}}},
	{Restaurant{"Seoul Food", "Korean"}, []menuItem{{"Bibimbap", 1595}, {"Korean Fried Chicken", 1895}, {"Kimchi Pancake", 1195}, {"Japchae", 1395}}},
	{Restaurant{"The Breakfast Club", "Breakfast"}, []menuItem{{"Buttermilk Pancakes", 1195}, {"Avocado Toast", 1295}, {"Breakfast Burrito", 1249}, {"Cold Brew", 525}}},
	{Restaurant{"Thai Orchid", "Thai"}, []menuItem{{"Pad Thai", 1495}, {"Green Curry", 1595}, {"Tom Yum Soup", 895}, {"Thai Iced Tea", 495}}},
}

// orderLookback bounds how far back an order history goes.
const orderLookback = 730 // days

// orders returns up to limit orders placed at or after since (zero: no
// bound), newest first. Whether the account ordered on a day, and what, is
// decided by the account's seed and the day alone.
func (a account) orders(now time.Time, since time.Time, limit int) []Order {
	ar := a.rng(saltOrders)
	perDay := 0.08 + ar.Float64()*0.35
	favorites := []int{ar.IntN(len(restaurants)), ar.IntN(len(restaurants)), ar.IntN(len(restaurants))}
	tipPct := int64(10 + ar.IntN(11))
	addr := a.profile().Address

	now = now.UTC()
	today := now.Unix() / 86400
	first := today - orderLookback
	if !since.IsZero() {
		first = max(first, since.UTC().Unix()/86400)
	}
	var out []Order
	for day := today; day >= first && len(out) < limit; day-- {
		r := a.rng(saltDay<<32 ^ uint64(day))
		if r.Float64() >= perDay {
			continue
		}
		placed := time.Unix(day*86400, 0).UTC().Add(time.Duration(11*60+r.IntN(11*60)) * time.Minute)
		if placed.After(now) || (!since.IsZero() && placed.Before(since)) {
			continue
		}
		ri := r.IntN(len(restaurants))
		if r.IntN(10) < 6 {
			ri = favorites[r.IntN(len(favorites))]
		}
		rest := restaurants[ri]
		o := Order{
			ID:              a.id("ord_", saltDay, uint64(day)),
			Status:          "delivered",
			PlacedAt:        placed,
			Restaurant:      rest.Restaurant,
			Currency:        "USD",
			DeliveryAddress: addr,
		}
		for _, mi := range r.Perm(len(rest.menu))[:1+r.IntN(3)] {
			it := OrderItem{Name: rest.menu[mi].name, Quantity: 1 + r.IntN(2), UnitPrice: rest.menu[mi].price}
			o.Items = append(o.Items, it)
			o.Subtotal += it.UnitPrice * int64(it.Quantity)
		}
		o.DeliveryFee = []int64{0, 49, 199, 299, 399}[r.IntN(5)]
		o.ServiceFee = max(o.Subtotal*15/100, 300)
		o.Tax = o.Subtotal * 8875 / 100000
		o.Tip = o.Subtotal * tipPct / 100
		if r.IntN(25) == 0 {
			o.Status, o.Tip = "cancelled", 0
		} else {
			o.DeliveredAt = placed.Add(time.Duration(20+r.IntN(40)) * time.Minute)
			if o.DeliveredAt.After(now) {
				o.Status, o.DeliveredAt = "on_the_way", time.Time{}
			}
		}
		o.Total = o.Subtotal + o.DeliveryFee + o.ServiceFee + o.Tax + o.Tip
		out = append(out, o)
	}
	return out
}
