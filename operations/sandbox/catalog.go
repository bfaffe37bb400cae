package sandbox

import (
	"encoding/json"
	"fmt"

	"github.com/linkflow/linkflow/operations"
)

// The integrations of the sandbox catalog.
const (
	TMobile  = "tmobile"
	ATT      = "att"
	Verizon  = "verizon"
	UberEats = "ubereats"
)

// The resources and actions of the sandbox catalog.
const (
	ResourcePaymentMethod    = "paymentMethod"
	ResourceBillingStatement = "mobileBillingStatement"
	ResourceAccountProfile   = "accountProfile"
	ResourceOrderHistory     = "orderHistory"

	ActionRead  = "read"
	ActionWrite = "write"
)

// Defaults the provider applies when an argument is absent.
const (
	DefaultStatementMonths = 3
	DefaultOrderLimit      = 20
)

var displayNames = map[string]string{TMobile: "T-Mobile", ATT: "AT&T", Verizon: "Verizon", UberEats: "Uber Eats"}

// IntegrationIDs returns the ids of the sandbox's integrations.
func IntegrationIDs() []string { return []string{ATT, TMobile, UberEats, Verizon} }

const noArguments = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {},
  "additionalProperties": false
}`

const paymentMethodWriteSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "cardNumber": {"type": "string", "minLength": 13, "maxLength": 19, "format": "luhn",
      "description": "The card number: 13 to 19 digits, no spaces."},
    "expirationDate": {"type": "string", "format": "card-expiry",
      "description": "Expiry as MM/YY, not in the past."},
    "cvv": {"type": "string", "pattern": "^[0-9]{3,4}$",
      "description": "The 3 or 4 digit security code."},
    "nameOnCard": {"type": "string", "minLength": 1, "maxLength": 100,
      "description": "The cardholder's name as printed on the card."},
    "billingZip": {"type": "string", "pattern": "^[0-9]{5}(-[0-9]{4})?$",
      "description": "The billing ZIP code: 5 digits or ZIP+4."}
  },
  "required": ["cardNumber", "expirationDate", "cvv", "nameOnCard", "billingZip"],
  "additionalProperties": false
}`

const statementReadSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "months": {"type": "integer", "minimum": 1, "maximum": 24, "default": 3,
      "description": "How many monthly statements to return, newest first."}
  },
  "additionalProperties": false
}`

const orderHistoryReadSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "since": {"type": "string", "format": "date",
      "description": "Only orders placed on or after this date (YYYY-MM-DD, UTC)."},
    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20,
      "description": "At most this many orders, newest first."}
  },
  "additionalProperties": false
}`

func paymentMethodResource(name string) operations.Resource {
	return operations.Resource{
		Name: ResourcePaymentMethod, DisplayName: "Payment methods",
		Actions: []operations.Action{
			{
				Name:              ActionRead,
				Description:       fmt.Sprintf("See the cards saved to your %s account: brand, last four digits and expiry date.", name),
				Arguments:         json.RawMessage(noArguments),
				ResultKey:         "paymentMethods",
				ResultDescription: "The saved cards, the default first: id, type, brand, last4, expirationDate (MM/YY), isDefault, addedAt. Never a full card number or security code.",
			},
			{
				Name:              ActionWrite,
				Description:       fmt.Sprintf("Add a new card to your %s account and make it your default payment method.", name),
				Arguments:         json.RawMessage(paymentMethodWriteSchema),
				ResultKey:         "paymentMethod",
				ResultDescription: "The card as saved: id, type, brand, last4, expirationDate (MM/YY), isDefault, addedAt. Never the full card number or the security code.",
			},
		},
	}
}

// Catalog returns the sandbox's integrations, without providers.
func Catalog() []operations.Integration {
	var out []operations.Integration
	for _, id := range []string{TMobile, ATT, Verizon} {
		name := displayNames[id]
		out = append(out, operations.Integration{
			ID: id, DisplayName: name,
			Resources: []operations.Resource{
				paymentMethodResource(name),
				{
					Name: ResourceBillingStatement, DisplayName: "Billing statements",
					Actions: []operations.Action{{
						Name:              ActionRead,
						Description:       fmt.Sprintf("See your monthly %s bills: amounts, due dates and what each charge was for.", name),
						Arguments:         json.RawMessage(statementReadSchema),
						ResultKey:         "billing",
						ResultDescription: "Statements, newest first: id, accountNumber, periodStart, periodEnd, statementDate, dueDate, amountDue (cents), currency, status (due or paid), paidAt, autoPay, lineItems (description, category, amount in cents).",
					}},
				},
				{
					Name: ResourceAccountProfile, DisplayName: "Account profile",
					Actions: []operations.Action{{
						Name:              ActionRead,
						Description:       fmt.Sprintf("See the name, contact details, address and plan on your %s account.", name),
						Arguments:         json.RawMessage(noArguments),
						ResultKey:         "profile",
						ResultDescription: "The account: accountNumber, name, email, phone, address, plan (name, lines, monthlyCharge in cents), memberSince, status.",
					}},
				},
			},
		})
	}
	name := displayNames[UberEats]
	out = append(out, operations.Integration{
		ID: UberEats, DisplayName: name,
		Resources: []operations.Resource{
			paymentMethodResource(name),
			{
				Name: ResourceOrderHistory, DisplayName: "Order history",
				Actions: []operations.Action{{
					Name:              ActionRead,
					Description:       fmt.Sprintf("See your past %s orders: restaurants, items and what you paid.", name),
					Arguments:         json.RawMessage(orderHistoryReadSchema),
					ResultKey:         "orders",
					ResultDescription: "Orders, newest first: id, status, placedAt, deliveredAt, restaurant, items, subtotal, deliveryFee, serviceFee, tax, tip, total (cents), currency, deliveryAddress.",
				}},
			},
		},
	})
	return out
}

// Register adds the sandbox's integrations to reg, each served by sb.
func Register(reg *operations.Registry, sb *Sandbox) error {
	for _, in := range Catalog() {
		in.Provider = sb.Provider(in.ID)
		if err := reg.Register(in); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	return nil
}

// supports reports whether integration offers action on resource.
func supports(integration, resource, action string) bool {
	switch resource {
	case ResourcePaymentMethod:
		return action == ActionRead || action == ActionWrite
	case ResourceBillingStatement, ResourceAccountProfile:
		return action == ActionRead && integration != UberEats
	case ResourceOrderHistory:
		return action == ActionRead && integration == UberEats
	}
	return false
}
