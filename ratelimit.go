package linkflow

import "time"

// RateLimitRequest asks one bucket for permission. A bucket allows Rate
// requests per second on average and Burst at once; it lives in Redis, so
// every API process shares it.
type RateLimitRequest struct {
	// Name identifies the bucket ("key:key_123", "ip:192.0.2.1", ...).
	Name string
	// Rate is the sustained rate, per second. It must be positive.
	Rate float64
	// Burst is how many requests may come at once. Default 1.
	Burst int
	// Cost is what this request takes from the bucket. Default 1.
	Cost int
	// Mode is what the request does with the bucket. Default RateLimitTake.
	Mode RateLimitMode
}

// RateLimitMode is what a RateLimitRequest does with its bucket.
type RateLimitMode int

const (
	// RateLimitTake takes Cost when the bucket allows it.
	RateLimitTake RateLimitMode = iota
	// RateLimitPeek asks whether Cost could be taken without taking it:
	// callers that only count failures peek first and take once the request
	// has failed. Requests in flight between the peek and the take all pass
	// one remaining unit, so a peek only suits secrets no number of
	// parallel guesses reaches (API keys, claim codes).
	RateLimitPeek
	// RateLimitReserve takes Cost for an attempt before it is judged, as a
	// failure: its caller gives it back (RateLimitRefund) when the attempt
	// did not fail. Parallel attempts cannot pass a bucket's last unit
	// together, as peeks can; what guards guessable secrets (passwords, the
	// operator key) reserves.
	RateLimitReserve
	// RateLimitRefund gives Cost back to the bucket: a reservation its
	// attempt did not spend. The bucket never refuses it (a full Redis may:
	// the failure then stays counted).
	RateLimitRefund
)

// CountsFailures says whether a request in mode m counts failures (a peek
// or a reservation), not requests.
func (m RateLimitMode) CountsFailures() bool { return m == RateLimitPeek || m == RateLimitReserve }

// RateLimitResult is a bucket's answer.
type RateLimitResult struct {
	Allowed bool
	// Limit is the bucket's burst; Remaining how many requests it would
	// still allow at once.
	Limit     int
	Remaining int
	// RetryAfter is how long to wait before the request would be allowed
	// (zero when it was).
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}
