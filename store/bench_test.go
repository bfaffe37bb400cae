package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/store"
)

func benchStore(b *testing.B) (*store.Store, string) {
	b.Helper()
	rdb, renv := testenv.Redis(b)
	kr, _ := store.ParseKeyring(store.GenerateKey("b"))
	st, err := store.New(store.Config{Redis: rdb, Keyring: kr, Prefix: renv.Prefix})
	if err != nil {
		b.Fatal(err)
	}
	org, err := st.CreateOrg(context.Background(), "", "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	return st, org.ID
}

var benchOps = []linkflow.Operation{{Resource: "paymentMethod", Action: "read"}, {Resource: "mobileBillingStatement", Action: "read"}}

// begun creates n claimed links and begins a run of each.
func begun(b *testing.B, st *store.Store, org string, n int) []*linkflow.Run {
	ctx := context.Background()
	runs := make([]*linkflow.Run, n)
	for i := range n {
		c, err := st.CreateLink(ctx, linkflow.NewLink{OrgID: org, IntegrationID: "tmobile", Operations: benchOps,
			ExpiresIn: time.Hour, WebhookURL: "https://example.com/hook"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, fmt.Sprintf("user%d", i%50), "pass_good"); err != nil {
			b.Fatal(err)
		}
		if runs[i], err = st.BeginRun(ctx, org, c.Link.ID, linkflow.NewLeaseToken(), time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	return runs
}

// BenchmarkFinishRun is the worker's commit: result, connection and event
// in one Lua script, against a real redis-server.
func BenchmarkFinishRun(b *testing.B) {
	st, org := benchStore(b)
	runs := begun(b, st, org, b.N)
	result := json.RawMessage(`{"operations":[{"resource":"paymentMethod","action":"read","data":{"paymentMethods":[{"id":"pm_1","brand":"visa","last4":"4242"}]}},{"resource":"mobileBillingStatement","action":"read","data":{"billing":[{"period":"2026-10","amountDue":8450}]}}]}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := runs[i]
		l := r.Link
		l.Status, l.CompletedAt, l.Result = linkflow.StatusSucceeded, time.Now(), result
		if _, err := st.FinishRun(ctx, l, r.Token, &linkflow.ConnectionWrite{IntegrationID: "tmobile", Username: l.Username,
			Credentials: &linkflow.Credentials{AccessToken: "at", RefreshToken: "rt", ExpiresAt: time.Now().Add(time.Hour)}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBeginRun is the worker's first step: lease, attempt, everything
// the session needs, in one Lua script.
func BenchmarkBeginRun(b *testing.B) {
	st, org := benchStore(b)
	ctx := context.Background()
	ids := make([]string, b.N)
	for i := range b.N {
		c, err := st.CreateLink(ctx, linkflow.NewLink{OrgID: org, IntegrationID: "tmobile", Operations: benchOps, ExpiresIn: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.ClaimLink(ctx, c.Link.ID, c.Link.ClaimCode, "user_good", "pass_good"); err != nil {
			b.Fatal(err)
		}
		ids[i] = c.Link.ID
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := st.BeginRun(ctx, org, ids[i], "tok", time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateLink is POST /v1/links's Redis step.
func BenchmarkCreateLink(b *testing.B) {
	st, org := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.CreateLink(ctx, linkflow.NewLink{OrgID: org, IntegrationID: "tmobile", Operations: benchOps, ExpiresIn: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
}
