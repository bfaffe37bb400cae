package bench

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/testenv"
)

// TestCPUSplitCountsChildren checks that a process's children's CPU
// time is counted apart from its own, as the Redis figures need for the
// children that rewrite the append-only file: a child the process has
// waited for, and one still running.
func TestCPUSplitCountsChildren(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Fatalf("bench reads CPU times from /proc (Linux): %v", err)
	}
	// The script starts a child that spins and says its pid; the test
	// kills the child once it has spun for a while, whatever the CPU's
	// speed.
	const spin = `sh -c 'echo $$; while :; do :; done'`
	for _, c := range []struct {
		name, script string
		waited       bool
	}{
		{"waited for", spin + `; echo done; read x`, true},
		{"still running", spin + ` & wait; echo done; read x`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", c.script)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); _ = cmd.Wait() }()
			out := bufio.NewReader(stdout)
			line, err := out.ReadString('\n')
			child, perr := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || perr != nil {
				t.Fatalf("script said %q: %v", line, err)
			}
			defer func() { _ = syscall.Kill(child, syscall.SIGKILL) }()
			testenv.Eventually(t, 30*time.Second, "the child spins for 0.3 s of CPU", func() bool {
				return cpuSeconds(child) >= 0.3
			})
			if !c.waited {
				if _, got := cpuSplit(cmd.Process.Pid); got < 0.3 {
					t.Fatalf("a running child spun 0.3 s, its parent's children count %.2f s", got)
				}
				return
			}
			if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if line, err := out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "done" {
				t.Fatalf("script said %q after its child died: %v", line, err)
			}
			own, got := cpuSplit(cmd.Process.Pid)
			if got < 0.3 {
				t.Fatalf("a child that spun 0.3 s was waited for, its parent's children count %.2f s", got)
			}
			if own >= 0.3 {
				t.Fatalf("the parent's own time %.2f s holds its child's", own)
			}
		})
	}
}
