package outbox_test

import (
	"testing"

	"github.com/linkflow/linkflow/outbox"
)

func TestClaimedMessageRoundTrip(t *testing.T) {
	t.Parallel()
	m := outbox.ClaimedMessage("org_x", "link_1", "tmobile")
	if m.Subject != outbox.SubjectClaimed+"tmobile" || m.ID != outbox.ClaimedID("link_1") {
		t.Fatalf("message %+v", m)
	}
	c, err := outbox.ParseClaimed(m.Data)
	if err != nil || c.LinkID != "link_1" || c.OrgID != "org_x" {
		t.Fatalf("parsed %+v %v", c, err)
	}
	if _, err := outbox.ParseClaimed([]byte(`{"orgId":"org_x"}`)); err == nil {
		t.Fatal("a claimed message without a link id must not parse")
	}
}

func BenchmarkClaimedMessage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m := outbox.ClaimedMessage("org_x", "link_0194f3c2a1b27c3e9d0f1a2b3c4d5e6f", "tmobile")
		if _, err := outbox.ParseClaimed(m.Data); err != nil {
			b.Fatal(err)
		}
	}
}
