package bench

import "testing"

func TestAOFOf(t *testing.T) {
	p := map[string]string{"loading": "0", "aof_enabled": "1", "aof_rewrites": "3", "aof_rewrites_consecutive_failures": "0",
		"aof_current_size": "123456", "aof_base_size": "100", "aof_buffer_length": "44"}
	if got := aofOf(p); got != (aofState{rewrites: 3, size: 123500, on: true}) {
		t.Fatalf("aofOf = %+v", got)
	}
	if got := aofOf(map[string]string{"aof_enabled": "0"}); got != (aofState{}) {
		t.Fatalf("without the AOF: %+v", got)
	}
}
