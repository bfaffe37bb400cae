package sandbox_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
)

// The catalog's schemas, as the API checks a link's operations with them.
func TestCatalogValidation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	reg := operations.NewRegistry(func() time.Time { return now })
	sb, err := sandbox.New(sandbox.Config{Store: nopStore{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Register(reg, sb); err != nil {
		t.Fatal(err)
	}
	if got, want := reg.IDs(), sandbox.IntegrationIDs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("registered %v, want %v", got, want)
	}
	card := func(mod func(m map[string]any)) string {
		m := map[string]any{"cardNumber": "4111111111111111", "expirationDate": "06/26", "cvv": "123", "nameOnCard": "Ada Lovelace", "billingZip": "10001"}
		mod(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, integration, resource, action, args string
		want                                      []string // issue paths
	}{
		{"read, no arguments", "tmobile", "paymentMethod", "read", ``, nil},
		{"read, empty object", "att", "paymentMethod", "read", `{}`, nil},
		{"read, unknown argument", "verizon", "paymentMethod", "read", `{"all":true}`, []string{"arguments.all"}},
		{"statements default", "tmobile", "mobileBillingStatement", "read", ``, nil},
		{"statements 24 months", "tmobile", "mobileBillingStatement", "read", `{"months":24}`, nil},
		{"statements 0 months", "tmobile", "mobileBillingStatement", "read", `{"months":0}`, []string{"arguments.months"}},
		{"statements 25 months", "att", "mobileBillingStatement", "read", `{"months":25}`, []string{"arguments.months"}},
		{"statements months as text", "att", "mobileBillingStatement", "read", `{"months":"3"}`, []string{"arguments.months"}},
		{"no statements at ubereats", "ubereats", "mobileBillingStatement", "read", ``, []string{""}},
		{"no orders at a carrier", "tmobile", "orderHistory", "read", ``, []string{""}},
		{"orders", "ubereats", "orderHistory", "read", `{"since":"2026-01-31","limit":100}`, nil},
		{"orders bad date", "ubereats", "orderHistory", "read", `{"since":"2026-13-01"}`, []string{"arguments.since"}},
		{"orders limit 0", "ubereats", "orderHistory", "read", `{"limit":0}`, []string{"arguments.limit"}},
		{"orders limit 101", "ubereats", "orderHistory", "read", `{"limit":101}`, []string{"arguments.limit"}},
		{"profile", "verizon", "accountProfile", "read", ``, nil},
		{"write", "ubereats", "paymentMethod", "write", card(func(map[string]any) {}), nil},
		{"write ZIP+4, amex, 4-digit cvv", "tmobile", "paymentMethod", "write", card(func(m map[string]any) {
			m["billingZip"], m["cardNumber"], m["cvv"] = "10001-1234", "378282246310005", "1234"
		}), nil},
		{"write nothing", "tmobile", "paymentMethod", "write", `{}`, []string{
			"arguments.billingZip", "arguments.cardNumber", "arguments.cvv", "arguments.expirationDate", "arguments.nameOnCard"}},
		{"write Luhn", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["cardNumber"] = "4111111111111112" }), []string{"arguments.cardNumber"}},
		{"write spaces", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["cardNumber"] = "4111 1111 1111 1111" }), []string{"arguments.cardNumber"}},
		{"write 12 digits", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["cardNumber"] = "411111111113" }), []string{"arguments.cardNumber"}},
		{"write expired", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["expirationDate"] = "05/26" }), []string{"arguments.expirationDate"}},
		{"write bad expiry", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["expirationDate"] = "2027-01" }), []string{"arguments.expirationDate"}},
		{"write cvv", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["cvv"] = "12345" }), []string{"arguments.cvv"}},
		{"write empty name", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["nameOnCard"] = "" }), []string{"arguments.nameOnCard"}},
		{"write long name", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["nameOnCard"] = strings.Repeat("a", 101) }), []string{"arguments.nameOnCard"}},
		{"write zip", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["billingZip"] = "10001-123" }), []string{"arguments.billingZip"}},
		{"write extra", "tmobile", "paymentMethod", "write", card(func(m map[string]any) { m["pin"] = "0000" }), []string{"arguments.pin"}},
	}
	for _, tt := range tests {
		issues := reg.ValidateOperations(tt.integration, []linkflow.Operation{{Resource: tt.resource, Action: tt.action, Arguments: json.RawMessage(tt.args)}})
		var paths []string
		for _, is := range issues {
			paths = append(paths, strings.TrimPrefix(strings.TrimPrefix(is.Path, "operations[0]"), "."))
			if is.Path == "operations[0].resource" || is.Path == "operations[0].action" {
				paths[len(paths)-1] = "" // an operation the integration lacks
			}
			for _, secret := range []string{"12345", "4111", "3782"} {
				if strings.Contains(is.Message, secret) {
					t.Errorf("%s: issue %q echoes a value", tt.name, is.Message)
				}
			}
		}
		if !reflect.DeepEqual(paths, tt.want) {
			t.Errorf("%s: issues %v, want paths %v", tt.name, issues, tt.want)
		}
	}
}

func TestCatalogWords(t *testing.T) {
	t.Parallel()
	for _, in := range sandbox.Catalog() {
		if in.DisplayName == "" {
			t.Errorf("%s: no display name", in.ID)
		}
		for _, r := range in.Resources {
			for _, a := range r.Actions {
				if r.DisplayName == "" || a.ResultKey == "" || !strings.Contains(a.Description, in.DisplayName) {
					t.Errorf("%s %s %s: the description should name %s for the end user: %q", in.ID, a.Name, r.Name, in.DisplayName, a.Description)
				}
			}
		}
	}
}

// nopStore satisfies AccountStore for tests that never reach it.
type nopStore struct{ sandbox.AccountStore }
