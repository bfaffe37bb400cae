package operations_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

type stubProvider struct{}

func (stubProvider) Login(context.Context, operations.LoginRequest) (*operations.LoginResult, error) {
	return &operations.LoginResult{SessionID: "s"}, nil
}

func (stubProvider) ContinueLogin(context.Context, operations.ContinueRequest) (*operations.LoginResult, error) {
	return nil, operations.Rejected("no challenge")
}

func (stubProvider) Execute(context.Context, operations.ExecuteRequest) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

func (stubProvider) Close(context.Context, string) error { return nil }

func bank(actions ...operations.Action) operations.Integration {
	return operations.Integration{
		ID: "bank", DisplayName: "Bank", Provider: stubProvider{},
		Resources: []operations.Resource{{Name: "transfer", DisplayName: "Transfers", Actions: actions}},
	}
}

var readTransfers = operations.Action{Name: "read", Description: "See your transfers", ResultKey: "transfers"}

// What the API validates is what the registry holds: an action added to the
// registry is accepted at once, with its schema.
func TestRegistryAddAction(t *testing.T) {
	t.Parallel()
	reg := operations.NewRegistry(nil)
	if err := reg.Register(bank(readTransfers)); err != nil {
		t.Fatal(err)
	}
	send := []linkflow.Operation{{Resource: "transfer", Action: "send", Arguments: json.RawMessage(`{"amount":500}`)}}
	if issues := reg.ValidateOperations("bank", send); len(issues) != 1 || issues[0].Path != "operations[0].action" || !strings.Contains(issues[0].Message, "read") {
		t.Fatalf("an unknown action: %v", issues)
	}

	err := reg.Register(bank(readTransfers, operations.Action{
		Name: "send", Description: "Send money from your account", ResultKey: "transfer",
		Arguments: json.RawMessage(`{"type":"object","properties":{"amount":{"type":"integer","minimum":1}},"required":["amount"],"additionalProperties":false}`),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if issues := reg.ValidateOperations("bank", send); len(issues) != 0 {
		t.Fatalf("the added action is refused: %v", issues)
	}
	bad := []linkflow.Operation{send[0], {Resource: "transfer", Action: "send", Arguments: json.RawMessage(`{"amount":0,"memo":"x"}`)}}
	want := []linkflow.Issue{
		{Path: "operations[1].arguments.amount", Message: "must be at least 1"},
		{Path: "operations[1].arguments.memo", Message: "is not allowed"},
	}
	if got := reg.ValidateOperations("bank", bad); !reflect.DeepEqual(got, want) {
		t.Fatalf("issues %v, want %v", got, want)
	}
	act, ok := reg.Action("bank", "transfer", "send")
	if !ok || act.ResultKey != "transfer" {
		t.Fatalf("action %+v", act)
	}
	if got := reg.IDs(); !reflect.DeepEqual(got, []string{"bank"}) {
		t.Fatalf("ids %v", got)
	}
}

func TestRegistryValidation(t *testing.T) {
	t.Parallel()
	reg := operations.NewRegistry(func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) })
	if err := reg.Register(bank(readTransfers)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		integration string
		ops         []linkflow.Operation
		want        []string
	}{
		{"unknown integration", "nope", []linkflow.Operation{{Resource: "transfer", Action: "read"}}, []string{"integrationId"}},
		{"missing names", "bank", []linkflow.Operation{{}}, []string{"operations[0].resource", "operations[0].action"}},
		{"no-argument action with arguments", "bank", []linkflow.Operation{{Resource: "transfer", Action: "read", Arguments: json.RawMessage(`{"x":1}`)}}, []string{"operations[0].arguments"}},
		{"no-argument action with null", "bank", []linkflow.Operation{{Resource: "transfer", Action: "read", Arguments: json.RawMessage(`null`)}}, nil},
	}
	for _, tt := range tests {
		var paths []string
		for _, is := range reg.ValidateOperations(tt.integration, tt.ops) {
			paths = append(paths, is.Path)
		}
		if !reflect.DeepEqual(paths, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, paths, tt.want)
		}
	}
}

func TestRegisterRefuses(t *testing.T) {
	t.Parallel()
	reg := operations.NewRegistry(nil)
	noProvider := bank(readTransfers)
	noProvider.Provider = nil
	for name, in := range map[string]operations.Integration{
		"no id":       {Provider: stubProvider{}},
		"no provider": noProvider,
		"bad schema":  bank(operations.Action{Name: "x", ResultKey: "x", Arguments: json.RawMessage(`{"type":"nonsense"}`)}),
		"bad JSON":    bank(operations.Action{Name: "x", ResultKey: "x", Arguments: json.RawMessage(`{"type":`)}),
	} {
		if err := reg.Register(in); err == nil {
			t.Errorf("%s: registered", name)
		}
	}
	if len(reg.IDs()) != 0 {
		t.Fatalf("a refused integration was registered: %v", reg.IDs())
	}
}

// Consent names the card an operation adds, by brand and last four digits
// only, for any argument in the luhn format.
func TestConsent(t *testing.T) {
	t.Parallel()
	reg := operations.NewRegistry(nil)
	pay := operations.Action{Name: "add", ResultKey: "card", Description: "Add a card",
		Arguments: json.RawMessage(`{"type":"object","properties":{"pan":{"type":"string","format":"luhn"},"memo":{"type":"string"}}}`)}
	if err := reg.Register(bank(readTransfers, pay)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ args, want string }{
		{`{"pan":"4111111111111111","memo":"secret memo"}`, "Visa ending in 1111"},
		{`{"pan":"5555555555554444"}`, "Mastercard ending in 4444"},
		{`{"pan":"378282246310005"}`, "American Express ending in 0005"},
		{`{"pan":"6011111111111117"}`, "Discover ending in 1117"},
		{`{"pan":"4111111111111112"}`, ""}, // not a card number
		{`{"memo":"x"}`, ""},
	} {
		if got := reg.Consent("bank", linkflow.Operation{Resource: "transfer", Action: "add", Arguments: json.RawMessage(tt.args)}); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.args, got, tt.want)
		}
	}
	if got := reg.Consent("bank", linkflow.Operation{Resource: "transfer", Action: "read"}); got != "" {
		t.Errorf("an action without arguments: %q", got)
	}
}
