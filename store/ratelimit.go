package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/linkflow/linkflow"
)

var rateLimitScript = script("rate_limit")

// RateLimit asks every bucket in reqs, in one round trip (a pipeline: the
// buckets may live in different cluster slots, so they are not one script).
// Results are in the order of reqs. With an error, the results are still
// those of the buckets that answered (the others are not Allowed): on a
// Redis Cluster some nodes may answer while one does not, and what the
// answering ones reserved must be given back.
func (s *Store) RateLimit(ctx context.Context, reqs ...linkflow.RateLimitRequest) ([]linkflow.RateLimitResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	results := make([]func() (*linkflow.RateLimitResult, error), len(reqs))
	pipe := s.pipeline()
	for i, r := range reqs {
		var err error
		if results[i], err = s.rateLimitIn(ctx, pipe, r); err != nil {
			return nil, err
		}
	}
	var first error
	if err := pipe.Exec(ctx); err != nil {
		first = fmt.Errorf("rate limit: %w", err)
	}
	out := make([]linkflow.RateLimitResult, len(reqs))
	for i, res := range results {
		r, err := res()
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		out[i] = *r
	}
	return out, first
}

// rateLimitIn queues one bucket's question in pipe; the returned func reads
// the answer once the pipeline ran.
func (s *Store) rateLimitIn(ctx context.Context, pipe *scriptPipe, r linkflow.RateLimitRequest) (func() (*linkflow.RateLimitResult, error), error) {
	if r.Rate <= 0 {
		return nil, fmt.Errorf("rate limit %s: rate must be positive", r.Name)
	}
	interval := max(int64(math.Round(1e6/r.Rate)), 1)
	var mode string
	switch r.Mode {
	case linkflow.RateLimitTake, linkflow.RateLimitReserve:
		mode = "take"
	case linkflow.RateLimitRefund:
		mode = "refund"
	case linkflow.RateLimitPeek:
		mode = "peek"
	default:
		return nil, fmt.Errorf("rate limit %s: unknown mode %d", r.Name, r.Mode)
	}
	c := pipe.Script(ctx, rateLimitScript, []string{s.k.rateLimit(bucketName(r.Name))},
		s.now().UnixMicro(), interval, max(r.Burst, 1), max(r.Cost, 1), mode)
	return func() (*linkflow.RateLimitResult, error) {
		v, err := c.Int64Slice()
		if err != nil || len(v) != 4 {
			return nil, errors.Join(fmt.Errorf("rate limit %s: unexpected reply %v", r.Name, c.Val()), err)
		}
		return &linkflow.RateLimitResult{
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
