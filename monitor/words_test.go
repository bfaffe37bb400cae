package monitor_test

import (
	"testing"
	"time"

	"github.com/linkflow/linkflow/monitor"
)

func TestWords(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {850 * time.Millisecond, "850ms"}, {10 * time.Second, "10s"}, {42400 * time.Millisecond, "42s"},
		{10 * time.Minute, "10m"}, {5*time.Minute + 10*time.Second, "5m10s"}, {time.Hour, "1h"},
		{90 * time.Minute, "1h30m"}, {24 * time.Hour, "24h"}, {50 * time.Hour, "2d2h"}, {72 * time.Hour, "3d"},
	} {
		if got := monitor.Words(tt.d); got != tt.want {
			t.Errorf("Words(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
