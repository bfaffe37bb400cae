package bench

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// AOF is what Redis's append-only file did during the measured span, over
// every master: a rewrite (a fork that writes the whole dataset again) is
// paid for on the same cores as everything else, and it comes around as
// often as links append bytes.
type AOF struct {
	// Rewrites is how many AOF rewrites finished during the span.
	Rewrites int `json:"rewrites"`
	// BytesPerLink is what the span appended per link (or delivery); only
	// when no rewrite ran in it, since a rewrite resets the file's size.
	BytesPerLink float64 `json:"bytesPerLink,omitempty"`
}

// aofMeter reads the AOF's counters of every master at the start of the
// measured span and at its end. Without a way to read them (a server that
// refuses INFO), it reports nothing.
type aofMeter struct {
	rdb   redis.UniversalClient
	start aofState
	ok    bool
}

// aofState is a server's count of rewrites, and the bytes its AOF holds
// counting those still in its buffer (with fsync every second, Redis may
// hold its writes back while the last fsync runs); on is false when the
// server keeps no AOF.
type aofState struct {
	rewrites, size int64
	on             bool
}

func startAOFMeter(ctx context.Context, rdb redis.UniversalClient) *aofMeter {
	m := &aofMeter{rdb: rdb}
	m.start, m.ok = aofRead(ctx, rdb)
	return m
}

// stop returns the span's AOF figures for n links, or nil.
func (m *aofMeter) stop(ctx context.Context, n int) *AOF {
	end, ok := aofRead(ctx, m.rdb)
	if !m.ok || !ok || !end.on || n == 0 {
		return nil
	}
	a := &AOF{Rewrites: int(end.rewrites - m.start.rewrites)}
	if a.Rewrites == 0 && end.size >= m.start.size {
		a.BytesPerLink = float64(end.size-m.start.size) / float64(n)
	}
	return a
}

// aofRead sums the AOF counters of INFO persistence over the masters (one
// server, or each master of a cluster).
func aofRead(ctx context.Context, rdb redis.UniversalClient) (aofState, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var sum aofState
	read := func(ctx context.Context, c *redis.Client) error {
		info, err := c.InfoMap(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		s := aofOf(info["Persistence"])
		mu.Lock()
		sum.rewrites += s.rewrites
		sum.size += s.size
		sum.on = sum.on || s.on
		mu.Unlock()
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, read)
	case *redis.Client:
		err = read(ctx, c)
	default:
		return aofState{}, false
	}
	return sum, err == nil
}

// aofOf reads the AOF counters of INFO's persistence section.
func aofOf(p map[string]string) aofState {
	n := func(k string) int64 {
		v, _ := strconv.ParseInt(p[k], 10, 64)
		return v
	}
	return aofState{rewrites: n("aof_rewrites"), size: n("aof_current_size") + n("aof_buffer_length"), on: p["aof_enabled"] == "1"}
}
