package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
)

// A password the end user entered again replaces the claimed one, under the
// run's lease, so that a later attempt logs in with it.
func TestAnsweredChallengeReplacesPassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, nil)
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "typo"); err != nil {
		t.Fatal(err)
	}
	run, err := b.st.BeginRun(ctx, b.org, l.ID, "tok1", time.Minute)
	if err != nil || run.Password != "typo" {
		t.Fatalf("begin: %v %+v", err, run)
	}
	if err := b.st.SetChallenge(ctx, b.org, l.ID, "not-the-lease", nil, "right"); !errors.Is(err, linkflow.ErrFenced) {
		t.Fatalf("without the lease: %v", err)
	}
	if err := b.st.SetChallenge(ctx, b.org, l.ID, "tok1", nil, "right"); err != nil {
		t.Fatal(err)
	}
	if err := b.st.ReleaseRun(ctx, b.org, l.ID, "tok1", "PROVIDER_UNAVAILABLE: later", false); err != nil {
		t.Fatal(err)
	}
	run, err = b.st.BeginRun(ctx, b.org, l.ID, "tok2", time.Minute)
	if err != nil || run.Password != "right" {
		t.Fatalf("the next attempt's password: %v %q", err, run.Password)
	}
}

// A debug link's trace keeps its last entries, in order, and is read only
// by the link's organization.
func TestTrace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.create(t, func(in *linkflow.NewLink) { in.Debug = true })
	for i := range linkflow.MaxTraceEntries + 5 {
		if err := b.st.AppendTrace(ctx, l.ID, l.ExpiresAt, linkflow.TraceEntry{At: int64(i), Step: linkflow.TraceOperation, Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	got, entries, err := b.st.Trace(ctx, b.org, l.ID)
	if err != nil || !got.Debug {
		t.Fatalf("trace: %v %+v", err, got)
	}
	if len(entries) != linkflow.MaxTraceEntries || entries[0].At != 5 || entries[len(entries)-1].At != int64(linkflow.MaxTraceEntries+4) {
		t.Fatalf("%d entries, first %+v", len(entries), entries[0])
	}
	if _, _, err := b.st.Trace(ctx, "org_other", l.ID); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("another organization: %v", err)
	}
	if _, _, err := b.st.Trace(ctx, b.org, fmt.Sprintf("link_%032d", 0)); !errors.Is(err, linkflow.ErrNotFound) {
		t.Fatalf("an unknown link: %v", err)
	}

	// Finishing the link gives its trace the link's retention.
	if _, err := b.st.CancelLink(ctx, b.org, l.ID); err != nil {
		t.Fatal(err)
	}
	linkTTL, err1 := b.st.Redis().PTTL(ctx, b.st.KeyLink(l.ID)).Result()
	traceTTL, err2 := b.st.Redis().PTTL(ctx, b.st.KeyTrace(l.ID)).Result()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if linkTTL <= 0 || traceTTL <= 0 || (linkTTL-traceTTL).Abs() > time.Second {
		t.Errorf("after the link finished: the link expires in %s, its trace in %s", linkTTL, traceTTL)
	}
}
