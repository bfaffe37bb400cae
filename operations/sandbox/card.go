package sandbox

import (
	"strconv"
	"strings"
)

// Card brands the sandbox recognises from a card number.
const (
	BrandVisa       = "visa"
	BrandMastercard = "mastercard"
	BrandAmex       = "amex"
	BrandDiscover   = "discover"
	BrandUnknown    = "unknown"
)

// CardBrand names the brand of a card number from its leading digits.
func CardBrand(number string) string {
	prefix := func(n int) int {
		if len(number) < n {
			return -1
		}
		v, err := strconv.Atoi(number[:n])
		if err != nil {
			return -1
		}
		return v
	}
	switch p2, p3, p4, p6 := prefix(2), prefix(3), prefix(4), prefix(6); {
	case strings.HasPrefix(number, "4"):
		return BrandVisa
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return BrandMastercard
	case p2 == 34 || p2 == 37:
		return BrandAmex
	case p4 == 6011, p2 == 65, p3 >= 644 && p3 <= 649, p6 >= 622126 && p6 <= 622925:
		return BrandDiscover
	}
	return BrandUnknown
}

// last4 returns the last four digits of a card number.
func last4(number string) string {
	if len(number) < 4 {
		return number
	}
	return number[len(number)-4:]
}
