package verify_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/linkflow/linkflow/webhooks/verify"
)

const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func request(body, id, ts, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewBufferString(body))
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", ts)
	r.Header.Set("webhook-signature", sig)
	return r
}

func at(ts int64) func() time.Time { return func() time.Time { return time.Unix(ts, 0) } }

// The spec's published vector verifies (its body is not a linkflow event, so
// the payload check is what fails after the signature passed).
func TestPublishedVector(t *testing.T) {
	t.Parallel()
	v, err := verify.New(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = at(vectorTS + 10)
	_, err = v.Verify(request(`{"test": 2432232314}`, vectorID, strconv.Itoa(vectorTS), vectorSig))
	if !errors.Is(err, verify.ErrPayload) {
		t.Fatalf("vector: %v, want the signature accepted and ErrPayload", err)
	}
	_, err = v.Verify(request(`{"test": 2432232315}`, vectorID, strconv.Itoa(vectorTS), vectorSig))
	if !errors.Is(err, verify.ErrSignature) {
		t.Fatalf("tampered body: %v, want ErrSignature", err)
	}
}

func sign(t *testing.T, secret, id string, ts time.Time, body string) string {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestVerify(t *testing.T) {
	t.Parallel()
	const body = `{"type":"link.succeeded","timestamp":1700000000000,"data":{"linkId":"link_1","integrationId":"sandbox","status":"succeeded","result":{"n":1},"connectionId":"conn_1","username":"u"}}`
	const oldSecret = "whsec_dGVzdC1zZWNyZXQtb25lLWxvbmctZW5vdWdo"
	const newSecret = "whsec_c2Vjb25kLXNlY3JldC1sb25nLWVub3VnaA=="
	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	good := sign(t, oldSecret, "evt_1", now, body)
	rotated := sign(t, newSecret, "evt_1", now, body) + " " + good

	v, err := verify.New(oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = func() time.Time { return now }

	ev, err := v.Verify(request(body, "evt_1", ts, good))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ev.Link()
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "evt_1" || ev.Type != "link.succeeded" || ev.Timestamp != 1700000000000 || string(ev.Body) != body ||
		l.LinkID != "link_1" || string(l.Result) != `{"n":1}` || *l.ConnectionID != "conn_1" {
		t.Errorf("event = %+v, link %+v", ev, l)
	}

	tests := []struct {
		name string
		r    *http.Request
		now  time.Time
		want error
	}{
		{"both signatures during rotation", request(body, "evt_1", ts, rotated), now, nil},
		{"4m59s old", request(body, "evt_1", ts, good), now.Add(299 * time.Second), nil},
		{"too old", request(body, "evt_1", ts, good), now.Add(301 * time.Second), verify.ErrTimestamp},
		{"too new", request(body, "evt_1", ts, good), now.Add(-301 * time.Second), verify.ErrTimestamp},
		{"unreadable timestamp", request(body, "evt_1", "yesterday", good), now, verify.ErrTimestamp},
		// The same second written otherwise is not the header that was
		// signed ("{id}.{timestamp}.{body}" signs the header as sent).
		{"leading zero", request(body, "evt_1", "0"+ts, good), now, verify.ErrTimestamp},
		{"plus sign", request(body, "evt_1", "+"+ts, good), now, verify.ErrTimestamp},
		{"missing signature", request(body, "evt_1", ts, ""), now, verify.ErrMissingHeaders},
		{"other id", request(body, "evt_2", ts, good), now, verify.ErrSignature},
		{"only the new secret's signature", request(body, "evt_1", ts, sign(t, newSecret, "evt_1", now, body)), now, verify.ErrSignature},
		{"re-serialized body", request(body+" ", "evt_1", ts, good), now, verify.ErrSignature},
	}
	for _, tt := range tests {
		v.Now = func() time.Time { return tt.now }
		_, err := v.Verify(tt.r)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}

	// A receiver rotating its own copy accepts either secret.
	both, err := verify.New(newSecret, oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	both.Now = func() time.Time { return now }
	if _, err := both.Verify(request(body, "evt_1", ts, good)); err != nil {
		t.Errorf("two secrets: %v", err)
	}
	for _, short := range []string{"whsec_", "whsec_c2hvcnQ="} { // empty, and 5 bytes
		if _, err := verify.New(short); err == nil {
			t.Errorf("the secret %q was accepted: anyone could sign with it", short)
		}
	}
	if _, err := verify.New("not-a-secret"); err == nil {
		t.Error("a secret without whsec_ was accepted")
	}
	v.Now = func() time.Time { return now }
	v.MaxBody = 10
	if _, err := v.Verify(request(body, "evt_1", ts, good)); !errors.Is(err, verify.ErrBodyTooLarge) {
		t.Errorf("large body: %v", err)
	}
}
