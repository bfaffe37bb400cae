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
	// Peek asks whether Cost could be taken without taking it: callers that
	// only count failures (wrong claim codes, bad passwords) peek first and
	// take once the request has failed.
	Peek bool
}

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
