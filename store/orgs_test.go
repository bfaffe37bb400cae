package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// A rotation keeps the replaced secret signing for its overlap; one
// without an overlap ends it; an unknown organization is not found.
func TestRotateWebhookSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	o, err := b.st.Org(ctx, b.org)
	if err != nil {
		t.Fatal(err)
	}
	first, second, third := o.WebhookSecrets[0], store.NewWebhookSecret(), store.NewWebhookSecret()
	if err := b.st.UpdateOrg(ctx, b.org, linkflow.OrgUpdate{WebhookSecret: second, PreviousSecretFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if o, err = b.st.Org(ctx, b.org); err != nil || len(o.WebhookSecrets) != 2 || o.WebhookSecrets[0] != second ||
		o.WebhookSecrets[1] != first || !o.PreviousSecretUntil.Equal(b.clock.Now().Add(time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("after a rotation with an overlap: %+v (%v)", o, err)
	}
	b.clock.Add(time.Hour)
	if o, _ = b.st.Org(ctx, b.org); len(o.WebhookSecrets) != 1 {
		t.Fatalf("past the overlap: %d secrets", len(o.WebhookSecrets))
	}
	b.clock.Add(-time.Hour)
	schemes := []string{"acme"}
	if err := b.st.UpdateOrg(ctx, b.org, linkflow.OrgUpdate{WebhookSecret: third, AppSchemes: &schemes}); err != nil {
		t.Fatal(err)
	}
	if o, _ = b.st.Org(ctx, b.org); len(o.WebhookSecrets) != 1 || o.WebhookSecrets[0] != third || len(o.AppSchemes) != 1 {
		t.Fatalf("after a rotation without an overlap: %+v", o)
	}
	if err := b.st.UpdateOrg(ctx, "org_unknown", linkflow.OrgUpdate{WebhookSecret: store.NewWebhookSecret()}); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("an unknown organization: %v", err)
	}
}

// Two rotations at once each keep the secret before them: one ends as the
// current secret and the other as the previous, so no secret an operator
// was shown is lost.
func TestRotationsAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	for round := range 20 {
		secrets := [2]string{store.NewWebhookSecret(), store.NewWebhookSecret()}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				<-start
				errs[i] = b.st.UpdateOrg(ctx, b.org, linkflow.OrgUpdate{WebhookSecret: secrets[i], PreviousSecretFor: time.Hour})
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		o, err := b.st.Org(ctx, b.org)
		if err != nil {
			t.Fatal(err)
		}
		if len(o.WebhookSecrets) != 2 || !(o.WebhookSecrets[0] == secrets[0] && o.WebhookSecrets[1] == secrets[1] ||
			o.WebhookSecrets[0] == secrets[1] && o.WebhookSecrets[1] == secrets[0]) {
			t.Fatalf("round %d: two rotations at once left %d secrets, not the two given", round, len(o.WebhookSecrets))
		}
	}
}
