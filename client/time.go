package client

import "time"

// Time converts the API's epoch milliseconds to a time.
func Time(ms int64) time.Time { return time.UnixMilli(ms) }

// TimeOf converts nullable epoch milliseconds to a time: the zero time for
// nil (it has not happened yet).
func TimeOf(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return time.UnixMilli(*ms)
}

// Millis converts t to epoch milliseconds, for the fields of a request
// (ReplayRequest.Since, say).
func Millis(t time.Time) int64 { return t.UnixMilli() }
