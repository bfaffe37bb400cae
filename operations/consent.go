package operations

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/linkflow/linkflow"
)

// Consent words what an operation's arguments commit the end user to where
// the action's description alone does not: the card it adds ("Visa ending
// in 1111") for each argument whose schema has the "luhn" format, whatever
// the integration. It shows no more of a card number than its brand and last
// four digits (what a receipt shows), and nothing of other arguments. It is
// "" when there is nothing to add.
func (r *Registry) Consent(integration string, op linkflow.Operation) string {
	act, ok := r.Action(integration, op.Resource, op.Action)
	if !ok || act.schema == nil || len(op.Arguments) == 0 {
		return ""
	}
	var args map[string]json.RawMessage
	if json.Unmarshal(op.Arguments, &args) != nil {
		return ""
	}
	var names []string
	for name, p := range act.schema.Properties {
		if p != nil && p.Format != nil && p.Format.Name == "luhn" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var cards []string
	for _, name := range names {
		var number string
		if json.Unmarshal(args[name], &number) == nil && LuhnValid(number) && len(number) >= 12 {
			cards = append(cards, CardBrand(number)+" ending in "+number[len(number)-4:])
		}
	}
	return strings.Join(cards, ", ")
}

// CardBrand names the brand of a card number by its first digits (the
// issuer identification number ranges), or "Card".
func CardBrand(number string) string {
	prefix := func(n int) int {
		v := 0
		for i := 0; i < n && i < len(number); i++ {
			v = v*10 + int(number[i]-'0')
		}
		return v
	}
	switch p2, p3, p4 := prefix(2), prefix(3), prefix(4); {
	case number[0] == '4':
		return "Visa"
	case (p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720):
		return "Mastercard"
	case p2 == 34 || p2 == 37:
		return "American Express"
	case p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649):
		return "Discover"
	case p4 >= 3528 && p4 <= 3589:
		return "JCB"
	case p2 == 36 || p2 == 38 || p2 == 39 || (p3 >= 300 && p3 <= 305):
		return "Diners Club"
	}
	return "Card"
}
