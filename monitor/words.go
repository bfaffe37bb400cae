package monitor

import (
	"fmt"
	"strings"
	"time"
)

// Words says a duration for an operator, to the precision that matters:
// 850ms, 42s, 5m10s, 3h, 1h30m, 2d4h.
func Words(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return trimZeros(d.Round(time.Second).String(), "m0s", "m") // 10m0s
	case d < 48*time.Hour:
		return trimZeros(trimZeros(d.Round(time.Minute).String(), "m0s", "m"), "h0m", "h") // 3h0m0s
	}
	days := d / (24 * time.Hour)
	if h := (d - days*24*time.Hour) / time.Hour; h > 0 {
		return fmt.Sprintf("%dd%dh", days, h)
	}
	return fmt.Sprintf("%dd", days)
}

// trimZeros replaces the zero units at the end of s with unit.
func trimZeros(s, zeros, unit string) string {
	if t, ok := strings.CutSuffix(s, zeros); ok {
		return t + unit
	}
	return s
}
