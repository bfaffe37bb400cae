package outbox_test

import (
	"testing"

	"github.com/linkflow/linkflow/outbox"
)

// FuzzFeedCursor parses arbitrary GET /v1/events cursors. Properties: no
// panic; a cursor is accepted only when it is a stream sequence written the
// way FormatCursor writes it, and reads back as itself.
func FuzzFeedCursor(f *testing.F) {
	for _, c := range []string{"", "0", "1", "18446744073709551615", "18446744073709551616", "01", "-1", "1-0"} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c string) {
		n, err := outbox.ParseCursor(c)
		if err != nil || c == "" {
			return
		}
		if outbox.FormatCursor(n) != c {
			t.Fatalf("%q read as %d, written back as %q", c, n, outbox.FormatCursor(n))
		}
	})
}
