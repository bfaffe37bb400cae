package bench

import "testing"

func TestParseAOF(t *testing.T) {
	info := "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrites:3\r\naof_rewrites_consecutive_failures:0\r\naof_current_size:123456\r\naof_base_size:100\r\naof_buffer_length:44\r\n"
	if got := parseAOF(info); got != (aofState{rewrites: 3, size: 123500, on: true}) {
		t.Fatalf("parseAOF = %+v", got)
	}
	if got := parseAOF("# Persistence\r\naof_enabled:0\r\n"); got != (aofState{}) {
		t.Fatalf("without the AOF: %+v", got)
	}
}
