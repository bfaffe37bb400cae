package bench

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"
)

// busyLoop keeps a shell on the CPU for about a third of a second.
const busyLoop = `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done`

// TestTreeCPUSecondsCountsChildren checks that a process's tree counts the
// CPU time of its children, as the Redis figures need for the children that
// rewrite the append-only file: one the process has waited for, and one
// still running.
func TestTreeCPUSecondsCountsChildren(t *testing.T) {
	for _, c := range []struct{ name, script string }{
		{"waited for", `sh -c '` + busyLoop + `'; echo done; read x`},
		{"still running", `sh -c '` + busyLoop + `; echo done; read x'; true`},
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
			// The script prints "done" once the busy child has finished
			// its loop; the test's own deadline bounds the wait.
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "done" {
				t.Fatalf("script said %q: %v", line, err)
			}
			self, tree := cpuSeconds(cmd.Process.Pid), treeCPUSeconds(cmd.Process.Pid)
			if tree-self < 0.1 {
				t.Fatalf("process %.2f s, with its children %.2f s: the busy child's time is missing", self, tree)
			}
		})
	}
}
