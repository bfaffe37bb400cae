package linkflow_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
)

// finishedLink is a succeeded link with a realistic two-operation result.
func finishedLink() *linkflow.Link {
	result := `{"operations":[{"resource":"paymentMethod","action":"read","data":{"paymentMethods":[` +
		strings.Repeat(`{"id":"pm_1","type":"card","brand":"visa","last4":"4242","expirationDate":"12/28","isDefault":true},`, 3) +
		`{"id":"pm_4","type":"card","brand":"amex","last4":"0005","expirationDate":"01/29","isDefault":false}]}},` +
		`{"resource":"mobileBillingStatement","action":"read","data":{"billing":[` +
		strings.Repeat(`{"period":"2026-10","dueDate":"2026-11-15","amountDue":8450,"currency":"USD","lineItems":[{"description":"Unlimited plan","amount":7000},{"description":"Taxes and fees","amount":1450}]},`, 2) +
		`{"period":"2026-08","dueDate":"2026-09-15","amountDue":8450,"currency":"USD","lineItems":[]}]}}]}`
	now := time.Now()
	return &linkflow.Link{ID: "link_0194f3c2a1b27c3e9d0f1a2b3c4d5e6f", OrgID: "org_x", IntegrationID: "tmobile",
		Operations: []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}, {Resource: "mobileBillingStatement", Action: "read"}},
		Status:     linkflow.StatusSucceeded, WebhookURL: "https://example.com/hook", Username: "user_good",
		ConnectionID: "conn_0194f3c2a1b27c3e9d0f1a2b3c4d5e6f", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		ClaimedAt: now, StartedAt: now, CompletedAt: now, Result: json.RawMessage(result)}
}

func TestLinkEventBody(t *testing.T) {
	t.Parallel()
	l := finishedLink()
	ev, body, err := linkflow.NewLinkEvent(l.View("", time.Now()), 1700000000000)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Type      string
		Timestamp int64
		Data      linkflow.LinkView
	}
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if decoded.Type != "link.succeeded" || decoded.Timestamp != 1700000000000 || decoded.Data.LinkID != l.ID ||
		string(decoded.Data.Result) != string(l.Result) || ev.ID != "evt_0194f3c2a1b27c3e9d0f1a2b3c4d5e6f" {
		t.Fatalf("decoded %+v", decoded)
	}

	big := finishedLink()
	big.Result = json.RawMessage(`{"blob":"` + strings.Repeat("x", linkflow.MaxEventBody) + `"}`)
	_, body, err = linkflow.NewLinkEvent(big.View("", time.Now()), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > linkflow.MaxEventBody || !strings.Contains(string(body), `"resultOmitted":true`) || strings.Contains(string(body), `"result"`) {
		t.Fatalf("oversized result not omitted (%d bytes)", len(body))
	}
}

func BenchmarkNewLinkEvent(b *testing.B) {
	v := finishedLink().View("", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := linkflow.NewLinkEvent(v, 1700000000000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeLinkEvent(b *testing.B) {
	_, body, _ := linkflow.NewLinkEvent(finishedLink().View("", time.Now()), 1700000000000)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var ev struct {
			Type      string
			Timestamp int64
			Data      linkflow.LinkView
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
