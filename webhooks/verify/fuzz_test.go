package verify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkflow/linkflow/webhooks/verify"
)

var plainID = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

const fuzzSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// sign is the Standard Webhooks signature, computed here independently of
// the library the verifier uses.
func hmacSignature(id, ts string, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(fuzzSecret, "whsec_"))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// FuzzVerify feeds the receiver's verifier arbitrary headers and bodies.
// Properties: no panic; it accepts only a request one of whose signatures is
// the true HMAC of id, timestamp and body, with a timestamp within the
// tolerance, and a body that is a linkflow event; a correctly signed event
// is accepted.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := `{"type":"link.succeeded","timestamp":1,"data":{"linkId":"link_1"}}`
	f.Add("msg_1", ts, hmacSignature("msg_1", ts, []byte(body)), []byte(body), true)
	f.Add("msg_1", ts, "v1,AAAA v1,"+hmacSignature("msg_1", ts, []byte(body))[3:], []byte(body), true)
	f.Add("msg_1", "99999999999999999999", "v1,x", []byte(body), false)
	f.Add("", "", "", []byte("{}"), false)
	f.Add("msg_2", ts, "v2,abc", []byte(`[]`), true)
	f.Fuzz(func(t *testing.T, id, timestamp, signature string, payload []byte, signIt bool) {
		v, err := verify.New(fuzzSecret)
		if err != nil {
			t.Fatal(err)
		}
		v.Now = func() time.Time { return now }
		if signIt {
			signature = hmacSignature(id, timestamp, payload) + " " + signature
		}
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", timestamp)
		h.Set("webhook-signature", signature)
		ev, err := v.VerifyBody(payload, h)
		if err != nil {
			if ev != nil {
				t.Fatal("an event with an error")
			}
			// A correctly signed, timely linkflow event must pass.
			var e verify.Event
			if signIt && plainID.MatchString(id) && timestamp == ts && json.Unmarshal(payload, &e) == nil && e.Type != "" {
				t.Fatalf("refused a signed event (id %q, body %q): %v", id, payload, err)
			}
			return
		}
		// Accepted: one of the signatures must be the true one.
		want := hmacSignature(h.Get("webhook-id"), h.Get("webhook-timestamp"), payload)
		found := false
		for _, s := range strings.Fields(h.Get("webhook-signature")) {
			if s == want {
				found = true
			}
		}
		if !found {
			t.Fatalf("accepted id %q ts %q sig %q without the true signature %s", id, timestamp, signature, want)
		}
		sec, err := strconv.ParseInt(timestamp, 10, 64)
		if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > verify.DefaultTolerance {
			t.Fatalf("accepted timestamp %q", timestamp)
		}
		if ev.Type == "" || ev.ID != h.Get("webhook-id") {
			t.Fatalf("accepted %+v", ev)
		}
	})
}
