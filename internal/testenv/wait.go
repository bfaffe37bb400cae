package testenv

import (
	"testing"
	"time"
)

// Eventually waits until cond returns true, checking often, and fails the test
// with msg when timeout passes first. It is how tests wait for something to
// happen: on a condition with a deadline, never a bare sleep.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, msg)
		}
		time.Sleep(wait) // a poll interval, not a wait for an event
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}
