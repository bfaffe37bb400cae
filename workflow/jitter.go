package workflow

import (
	"math/rand/v2"
	"time"
)

// jitter spreads d by +-frac so that retries of many links do not align.
func jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 {
		return d
	}
	f := 1 + frac*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}
