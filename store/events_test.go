package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/store"
)

// succeeded runs a new link to success with result and returns its end and
// the webhook body its event must have: the event of the link as it reads
// once finished.
func (b *bundle) succeeded(t *testing.T, result string) (*linkflow.Finished, []byte) {
	t.Helper()
	ctx := context.Background()
	l := b.create(t, func(in *linkflow.NewLink) { in.WebhookURL = "https://hooks.example.com/a" })
	if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "pass_good"); err != nil {
		t.Fatal(err)
	}
	r, err := b.st.BeginRun(ctx, b.org, l.ID, "tok", time.Minute)
	if err != nil || r.Verdict != linkflow.RunStart {
		t.Fatalf("begin: %+v %v", r, err)
	}
	r.Link.Status, r.Link.CompletedAt, r.Link.Result = linkflow.StatusSucceeded, b.clock.Now(), json.RawMessage(result)
	fin, err := b.st.FinishRun(ctx, r.Link, "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.st.Link(ctx, b.org, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, want, err := linkflow.NewLinkEvent(got.View("", b.clock.Now()), b.clock.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return fin, want
}

// bodies returns the event's body as each of its readers gets it: the
// events feed, the dispatcher's accept step and its load step.
func (b *bundle) bodies(t *testing.T, fin *linkflow.Finished) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	evs, err := b.st.EventRecords(ctx, []string{fin.EventID})
	if err != nil {
		t.Fatal(err)
	}
	out["feed"] = evs[fin.EventID].Body
	if acc := b.accept(t, fin, 0, time.Minute); acc.Event != nil {
		out["accept"] = acc.Event.Body
	}
	_, ev, err := b.st.LoadDelivery(ctx, b.org, fin.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if ev != nil {
		out["load"] = ev.Body
	}
	return out
}

// stored counts how many times the event's record holds s.
func (b *bundle) stored(t *testing.T, fin *linkflow.Finished, s string) int {
	t.Helper()
	rec, err := b.st.Redis().HGetAll(context.Background(), b.st.KeyEvent(fin.EventID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range rec {
		n += strings.Count(v, s)
	}
	return n
}

// A successful link's result is stored once, in the link: its event's
// record keeps the body's parts around it, and every reader of the event
// (the events feed, the dispatcher's accept and load steps) gets the body
// whole, byte for byte the one the link's event has.
func TestEventBodyKeepsTheResultOnce(t *testing.T) {
	t.Parallel()
	const result = `{"operations":[{"resource":"paymentMethod","action":"read","data":{"paymentMethods":[{"last4":"1111"}]}}]}`
	check := func(t *testing.T, b *bundle, result string, stored int) {
		fin, want := b.succeeded(t, result)
		for reader, body := range b.bodies(t, fin) {
			if !bytes.Equal(body, want) {
				t.Fatalf("%s's body:\n%s\nwant:\n%s", reader, body, want)
			}
		}
		if n := b.stored(t, fin, result); n != stored {
			t.Fatalf("the event's record holds the result %d times, want %d", n, stored)
		}
	}
	t.Run("kept by the link", func(t *testing.T) { check(t, setup(t), result, 0) })
	t.Run("links kept for less time than events", func(t *testing.T) {
		check(t, setupWith(t, func(c *store.Config) { c.Retention, c.EventRetention = time.Hour, 2*time.Hour }), result, 1)
	})
	t.Run("left out for size", func(t *testing.T) {
		big := `{"blob":"` + strings.Repeat("x", linkflow.MaxEventBody) + `"}`
		b := setup(t)
		fin, want := b.succeeded(t, big)
		if !bytes.Contains(want, []byte(`"resultOmitted":true`)) {
			t.Fatalf("the event of a %d-byte result: %.200s", len(big), want)
		}
		for reader, body := range b.bodies(t, fin) {
			if !bytes.Equal(body, want) {
				t.Fatalf("%s's body: %.300s\nwant: %.300s", reader, body, want)
			}
		}
	})
	t.Run("a record kept whole, as before", func(t *testing.T) {
		b := setup(t)
		fin, want := b.succeeded(t, result)
		ctx := context.Background()
		key := b.st.KeyEvent(fin.EventID)
		if err := b.st.Redis().HDel(ctx, key, "head", "tail").Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.st.Redis().HSet(ctx, key, "body", want).Err(); err != nil {
			t.Fatal(err)
		}
		for reader, body := range b.bodies(t, fin) {
			if !bytes.Equal(body, want) {
				t.Fatalf("%s's body: %s", reader, body)
			}
		}
	})
	t.Run("the link gone", func(t *testing.T) {
		b := setup(t)
		fin, want := b.succeeded(t, result)
		ctx := context.Background()
		if err := b.st.Redis().Del(ctx, b.st.KeyLink("link_"+strings.TrimPrefix(fin.EventID, "evt_"))).Err(); err != nil {
			t.Fatal(err)
		}
		evs, err := b.st.EventRecords(ctx, []string{fin.EventID})
		if err != nil {
			t.Fatal(err)
		}
		if body, nulled := evs[fin.EventID].Body, bytes.Replace(want, []byte(result), []byte("null"), 1); !bytes.Equal(body, nulled) {
			t.Fatalf("body %s, want %s", body, nulled)
		}
	})
}

// On a single Redis the commit writes the connection in the same script: a
// new connection gets its set-once fields, version 1 and its place in the
// organization's list; a later link's commit renews it and keeps them.
func TestCommitWritesTheConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	run := func(token string) (*linkflow.Link, *linkflow.Finished) {
		t.Helper()
		l := b.create(t, nil)
		if _, err := b.st.ClaimLink(ctx, l.ID, l.ClaimCode, "user_good", "pass_good"); err != nil {
			t.Fatal(err)
		}
		r, err := b.st.BeginRun(ctx, b.org, l.ID, token, time.Minute)
		if err != nil || r.Verdict != linkflow.RunStart {
			t.Fatalf("begin: %+v %v", r, err)
		}
		r.Link.Status, r.Link.CompletedAt, r.Link.Result = linkflow.StatusSucceeded, b.clock.Now(), json.RawMessage(`{}`)
		fin, err := b.st.FinishRun(ctx, r.Link, token, &linkflow.ConnectionWrite{IntegrationID: "tmobile", Username: "user_good",
			DisplayName: "Ada", Credentials: &linkflow.Credentials{AccessToken: "at_" + token}})
		if err != nil {
			t.Fatal(err)
		}
		return l, fin
	}
	identity := func(c *linkflow.Connection, id string) bool {
		return c != nil && c.ID == id && c.OrgID == b.org && c.IntegrationID == "tmobile" && c.Username == "user_good"
	}
	first, fin := run("tok1")
	c, err := b.st.Connection(ctx, b.org, fin.ConnectionID)
	if !identity(c, fin.ConnectionID) {
		t.Fatalf("new connection's identity: %+v %v", c, err)
	}
	if err != nil || c.Version != 1 || !slices.Equal(c.LinkIDs, []string{first.ID}) || c.LastLinkID != first.ID || c.Disabled ||
		string(c.Metadata) != "{}" || c.CreatedAt.IsZero() || c.Credentials.AccessToken != "at_tok1" {
		t.Fatalf("new connection: %+v %v", c, err)
	}
	meta := json.RawMessage(`{"plan":"gold"}`)
	disabled := true
	if _, err := b.st.UpdateConnection(ctx, b.org, fin.ConnectionID, linkflow.ConnectionPatch{Metadata: meta, Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(time.Second)
	second, fin2 := run("tok2")
	c2, err := b.st.Connection(ctx, b.org, fin2.ConnectionID)
	if !identity(c2, fin.ConnectionID) {
		t.Fatalf("renewed connection's identity: %+v %v", c2, err)
	}
	if err != nil || fin2.ConnectionID != fin.ConnectionID || c2.Version != 3 || !slices.Equal(c2.LinkIDs, []string{first.ID, second.ID}) ||
		c2.LastLinkID != second.ID || !c2.Disabled || string(c2.Metadata) != string(meta) ||
		!c2.CreatedAt.Equal(c.CreatedAt) || c2.Credentials.AccessToken != "at_tok2" {
		t.Fatalf("renewed connection: %+v %v", c2, err)
	}
	list, _, err := b.st.ListConnections(ctx, b.org, linkflow.ConnectionFilter{}, "", 10)
	if err != nil || len(list) != 1 || list[0].ID != fin.ConnectionID {
		t.Fatalf("listed: %+v %v", list, err)
	}
}
