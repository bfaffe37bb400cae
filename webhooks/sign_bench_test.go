package webhooks_test

import (
	"testing"
	"time"

	"github.com/linkflow/linkflow/webhooks"
)

// BenchmarkSign signs a typical link event body with one secret, and with
// two during a rotation.
func BenchmarkSign(b *testing.B) {
	body := make([]byte, 2048)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	ts := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name    string
		secrets []string
	}{
		{"one secret", []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		{"rotation", []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := webhooks.Sign(tc.secrets, "evt_0194f3c2a1b27c3e9d0f1a2b3c4d5e6f", ts, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
