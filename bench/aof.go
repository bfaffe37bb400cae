package bench

import (
	"context"
	"strconv"
	"strings"
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
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		s := parseAOF(info)
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

// parseAOF reads the AOF counters of an INFO persistence reply.
func parseAOF(info string) aofState {
	var s aofState
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "aof_enabled":
			s.on = n == 1
		case "aof_rewrites":
			s.rewrites = n
		case "aof_current_size", "aof_buffer_length":
			s.size += n
		}
	}
	return s
}
