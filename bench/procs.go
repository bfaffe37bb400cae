package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linkflow/linkflow/internal/promtext"
)

// child is a linkflow process bench started.
type child struct {
	name    string
	cmd     *exec.Cmd
	metrics string // host:port serving /metrics
	done    chan struct{}
	tail    *tailBuffer
}

// startChild runs the linkflow binary with args and waits until its
// /metrics answers (metricsAddr is where the child serves it).
func startChild(ctx context.Context, binary, name, metricsAddr string, env []string, args ...string) (*child, error) {
	c := &child{name: name, metrics: metricsAddr, done: make(chan struct{}), tail: &tailBuffer{max: 64 << 10}}
	c.cmd = exec.Command(binary, args...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = io.Discard, c.tail
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := c.metric("go_goroutines"); err == nil {
			return c, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("%s exited at start:\n%s", name, c.tail.String())
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s did not come up:\n%s", name, c.tail.String())
		}
	}
}

// stop asks the child to shut down and waits, killing it after 30 s.
func (c *child) stop() {
	if c == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// peakRSS is the most resident memory the child ever had (VmHWM).
func (c *child) peakRSS() int64 { return procStatus(c.pid(), "VmHWM") }

// rss is the child's resident memory now.
func (c *child) rss() int64 { return procStatus(c.pid(), "VmRSS") }

// metric reads a metric (summed over its labels) from the child's /metrics.
func (c *child) metric(name string) (float64, error) { return promtext.Scrape(c.metrics, name) }

// profileChildren captures a CPU profile of each child now (for secs) and
// an allocation profile after it, into dir. It returns at once; wait on the
// WaitGroup for the profiles.
func profileChildren(progress io.Writer, dir string, secs int, children ...*child) *sync.WaitGroup {
	var wg sync.WaitGroup
	if dir == "" {
		return &wg
	}
	_ = os.MkdirAll(dir, 0o755)
	hc := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
	for _, c := range children {
		save := func(path, file string) {
			resp, err := hc.Get("http://" + c.metrics + path)
			if err != nil {
				fmt.Fprintf(progress, "bench: profile %s: %v\n", c.name, err)
				return
			}
			defer resp.Body.Close()
			out, err := os.Create(filepath.Join(dir, file))
			if err != nil {
				fmt.Fprintf(progress, "bench: profile %s: %v\n", c.name, err)
				return
			}
			defer out.Close()
			_, _ = io.Copy(out, resp.Body)
		}
		wg.Go(func() {
			save(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), c.name+".cpu.pprof")
			save("/debug/pprof/allocs", c.name+".allocs.pprof")
		})
	}
	return &wg
}

// procStatus reads a "VmXXX:   N kB" line of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n << 10
		}
	}
	return 0
}

// cpuSeconds is the CPU time (user + system) process pid has used so far.
func cpuSeconds(pid int) float64 {
	self, _ := cpuTimes(pid)
	return self
}

// cpuSplit is the CPU time process pid has used so far, and apart, that of
// its children: those it has waited for and those still running (with
// their own children). A Redis server rewrites its append-only file in a
// child it forks, so its own time leaves the rewrites out. A child reaped
// between the reads here can be counted twice or not at all; that needs a
// reap within microseconds of a measurement, rare enough for a benchmark.
func cpuSplit(pid int) (own, children float64) {
	own, children = cpuTimes(pid)
	for _, c := range childPids(pid) {
		children += treeCPUSeconds(c)
	}
	return own, children
}

// treeCPUSeconds is the CPU time of process pid and of all its children.
func treeCPUSeconds(pid int) float64 {
	self, waited := cpuTimes(pid)
	for _, c := range childPids(pid) {
		self += treeCPUSeconds(c)
	}
	return self + waited
}

// cpuTimes reads /proc/<pid>/stat: the CPU time (user + system) of the
// process, and that of the children it has waited for.
func cpuTimes(pid int) (self, waited float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// Fields after the command name (which may hold spaces) start at ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 15 {
		return 0, 0
	}
	var ticks [4]float64 // utime, stime, cutime, cstime
	for i := range ticks {
		ticks[i], _ = strconv.ParseFloat(f[11+i], 64)
	}
	return (ticks[0] + ticks[1]) / 100, (ticks[2] + ticks[3]) / 100 // clock ticks; 100 per second on Linux
}

// childPids lists the child processes of pid (Linux).
func childPids(pid int) []int {
	// Children hang off the thread that started them: look at every thread.
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// cpuMeter measures the CPU time processes spend during a measured span.
type cpuMeter struct{ procs []metered }

// metered is one process a cpuMeter measures, and its CPU seconds at the
// start of the span: its own, and its children's where they count.
type metered struct {
	name          string
	pid           int
	children      bool
	start, cstart float64
}

// add measures process pid's own CPU time.
func (m *cpuMeter) add(name string, pid int) {
	m.procs = append(m.procs, metered{name: name, pid: pid, start: cpuSeconds(pid)})
}

// addWithChildren measures process pid's own CPU time and, apart, its
// children's (a Redis server's, which rewrite its append-only file).
func (m *cpuMeter) addWithChildren(name string, pid int) {
	own, children := cpuSplit(pid)
	m.procs = append(m.procs, metered{name: name, pid: pid, children: true, start: own, cstart: children})
}

// stop returns each process's CPU seconds since add, per completed unit.
func (m *cpuMeter) stop(units int) []ProcessCPU {
	out := make([]ProcessCPU, len(m.procs))
	for i, mp := range m.procs {
		p := ProcessCPU{Name: mp.name}
		if mp.children {
			own, children := cpuSplit(mp.pid)
			p.CPUSeconds, p.ChildSeconds = own-mp.start, children-mp.cstart
		} else {
			p.CPUSeconds = cpuSeconds(mp.pid) - mp.start
		}
		if units > 0 {
			p.MicrosPerUnit = p.CPUSeconds / float64(units) * 1e6
			p.ChildMicrosPerUnit = p.ChildSeconds / float64(units) * 1e6
		}
		out[i] = p
	}
	return out
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
