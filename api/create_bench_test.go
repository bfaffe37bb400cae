package api

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
)

// validationOnly is a provider for a registry that only validates.
type validationOnly struct{ operations.Provider }

func (validationOnly) Login(context.Context, operations.LoginRequest) (*operations.LoginResult, error) {
	return nil, errors.New("validation only")
}

// BenchmarkCreateValidation is POST /v1/links's validation of seed 001's
// example: the body, the catalog and the card arguments' JSON Schema.
func BenchmarkCreateValidation(b *testing.B) {
	reg := operations.NewRegistry(nil)
	for _, in := range sandbox.Catalog() {
		in.Provider = validationOnly{}
		if err := reg.Register(in); err != nil {
			b.Fatal(err)
		}
	}
	s := &Server{cfg: Config{Registry: reg, MaxOperations: 20, DefaultExpiry: 1, MaxExpiry: 1 << 62}}
	body, _ := json.Marshal(map[string]any{
		"integrationId": "tmobile",
		"operations": []any{
			map[string]any{"resource": "paymentMethod", "action": "read"},
			map[string]any{"resource": "paymentMethod", "action": "write", "arguments": map[string]any{
				"cardNumber": "4111111111111111", "expirationDate": "12/39", "cvv": "123",
				"nameOnCard": "John Doe", "billingZip": "10001"}},
		},
		"webhookUrl": "https://your-server.com/webhook",
		"returnUrl":  "https://your-app.com/done",
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, issues, _ := s.parseCreate(ctx, "org_bench", body); len(issues) > 0 {
			b.Fatal(issues)
		}
	}
}
