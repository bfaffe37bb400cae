package webhooks_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow/internal/testenv"
)

// roundTrips counts a Redis client's round trips: one per command, one per
// pipeline.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkDispatch delivers b.N events, already on JetStream when the
// dispatcher starts, to a receiver that answers 204, and reports the Redis
// round trips per delivery (this process's, the publisher's few included).
func BenchmarkDispatch(b *testing.B) {
	tb := setup(b)
	rc := newReceiver(b, answer(http.StatusNoContent))
	for range b.N {
		tb.finish(rc.url())
	}
	rt := &roundTrips{}
	tb.rdb.AddHook(rt)
	cfg := tb.config()
	cfg.Schedule = nil
	cfg.PollInterval = time.Second
	// Every delivery waits its turn for the receiver's slots rather than
	// going back to the schedule: this measures deliveries, not deferrals.
	cfg.HostQueue, cfg.HostQueueWait = b.N, time.Minute
	cfg.Visibility, cfg.Timeout = 5*time.Minute, time.Minute
	b.ResetTimer()
	tb.dispatcher(cfg)
	testenv.Eventually(b, 5*time.Minute, "every event delivered", func() bool {
		return counterValue(b, tb, "linkflow_webhook_deliveries_finished_total", "succeeded") == float64(b.N)
	})
	b.StopTimer()
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "round-trips/op")
}
