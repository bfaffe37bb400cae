package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var rateLimitScript = script("rate_limit")

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

// RateLimit asks every bucket in reqs, in one round trip (a pipeline: the
// buckets may live in different cluster slots, so they are not one script).
// Results are in the order of reqs.
func (s *Store) RateLimit(ctx context.Context, reqs ...RateLimitRequest) ([]RateLimitResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	results := make([]func() (*RateLimitResult, error), len(reqs))
	run := func() error {
		pipe := s.rdb.Pipeline()
		for i, r := range reqs {
			var err error
			if results[i], err = s.rateLimitIn(ctx, pipe, r); err != nil {
				return err
			}
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if isNoScript(err) {
		if err := s.LoadScripts(ctx); err != nil {
			return nil, err
		}
		err = run()
	}
	if err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	out := make([]RateLimitResult, len(reqs))
	for i, res := range results {
		r, err := res()
		if err != nil {
			return nil, err
		}
		out[i] = *r
	}
	return out, nil
}

// rateLimitIn queues one bucket's question in pipe; the returned func reads
// the answer once the pipeline ran.
func (s *Store) rateLimitIn(ctx context.Context, pipe redis.Pipeliner, r RateLimitRequest) (func() (*RateLimitResult, error), error) {
	if r.Rate <= 0 {
		return nil, fmt.Errorf("rate limit %s: rate must be positive", r.Name)
	}
	interval := max(int64(math.Round(1e6/r.Rate)), 1)
	peek := "0"
	if r.Peek {
		peek = "1"
	}
	c := rateLimitScript.EvalSha(ctx, pipe, []string{rateLimitKey(bucketName(r.Name))},
		s.now().UnixMicro(), interval, max(r.Burst, 1), max(r.Cost, 1), peek)
	return func() (*RateLimitResult, error) {
		v, err := c.Int64Slice()
		if err != nil || len(v) != 4 {
			return nil, errors.Join(fmt.Errorf("rate limit %s: unexpected reply %v", r.Name, c.Val()), err)
		}
		return &RateLimitResult{
			Allowed:    v[0] == 1,
			Limit:      max(r.Burst, 1),
			Remaining:  int(max(v[1], 0)),
			RetryAfter: time.Duration(v[2]) * time.Microsecond,
			Reset:      time.Duration(v[3]) * time.Microsecond,
		}, nil
	}, nil
}

// bucketName keeps a caller's name from breaking the key's hash tag.
var bucketName = strings.NewReplacer("{", "(", "}", ")").Replace
