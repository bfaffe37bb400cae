package sandbox_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/sandbox"
)

// FuzzValidateOperations checks arbitrary operations and arguments against
// the sandbox's catalog, as link creation does. Properties: no panic; every
// issue has a path under the operations it is about; an operation without
// issues is in the catalog and its arguments are what the action's schema
// accepts (or none when it takes none).
func FuzzValidateOperations(f *testing.F) {
	now := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	reg := operations.NewRegistry(func() time.Time { return now })
	sb, err := sandbox.New(sandbox.Config{Store: nopStore{}})
	if err != nil {
		f.Fatal(err)
	}
	if err := sandbox.Register(reg, sb); err != nil {
		f.Fatal(err)
	}
	f.Add("tmobile", "paymentMethod", "write", []byte(`{"cardNumber":"4111111111111111","expirationDate":"12/30","cvv":"123","nameOnCard":"A B","billingZip":"10001"}`))
	f.Add("tmobile", "paymentMethod", "read", []byte(`{"x":1}`))
	f.Add("att", "billingStatement", "read", []byte(`{"months":3}`))
	f.Add("ubereats", "orderHistory", "read", []byte(`null`))
	f.Add("nope", "a", "b", []byte(`[]`))
	f.Fuzz(func(t *testing.T, integration, resource, action string, args []byte) {
		op := linkflow.Operation{Resource: resource, Action: action}
		if json.Valid(args) {
			op.Arguments = args
		}
		issues := reg.ValidateOperations(integration, []linkflow.Operation{op, {Resource: "paymentMethod", Action: "read"}})
		for _, is := range issues {
			if is.Path != "integrationId" && !(len(is.Path) >= len("operations[0]") && (is.Path[:13] == "operations[0]" || is.Path[:13] == "operations[1]")) {
				t.Fatalf("issue %+v has a path outside the operations", is)
			}
			if is.Message == "" {
				t.Fatalf("issue %+v has no message", is)
			}
		}
		if len(issues) == 0 {
			if _, ok := reg.Action(integration, resource, action); !ok {
				t.Fatalf("%s %s %s passed without being in the catalog", integration, action, resource)
			}
		}
	})
}
