package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is what a bench run measured. Its JSON field names are stable:
// scripts compare runs by them.
type Report struct {
	Mode            string `json:"mode"`
	Links           int    `json:"links"`
	Completed       int    `json:"completed"`
	OpsPerLink      int    `json:"opsPerLink"`
	Integration     string `json:"integration"`
	ProviderLatency string `json:"providerLatency,omitempty"`
	// Load describes the load: open or closed loop, or the processes
	// started.
	Load string `json:"load"`
	// DurationSec is the measured span: from the first create (or the
	// start of the measured processes) to the last completion.
	DurationSec         float64 `json:"durationSeconds"`
	LinksPerSecond      float64 `json:"linksPerSecond"`
	DeliveriesPerSecond float64 `json:"deliveriesPerSecond,omitempty"`
	// Latency has percentiles of each measured span, by its name
	// ("create", "claim->webhook", ...).
	Latency map[string]Percentiles `json:"latencyMs"`
	// Errors counts failures by code: the API's error codes, TIMEOUT,
	// NETWORK, NO_WEBHOOK, DUPLICATE_WEBHOOK, LINK_FAILED.
	Errors        map[string]int  `json:"errors"`
	BadSignatures int             `json:"badSignatures"`
	Processes     []ProcessMemory `json:"processes,omitempty"`
	// CPU is each process's CPU time during the measured span, and per link
	// (or delivery): where the time goes.
	CPU []ProcessCPU `json:"cpu,omitempty"`
	// PeakInFlight is the most sessions the first worker process ran at
	// once (worker only), and BytesPerSession its memory growth per
	// session at that peak.
	PeakInFlight    int     `json:"peakInFlight,omitempty"`
	BytesPerSession float64 `json:"bytesPerInFlightSession,omitempty"`
	// AOF is what the append-only file of the Redis bench runs against did
	// during the measured span (worker and dispatcher only; the whole
	// server's, so on a Redis shared with others theirs too).
	AOF *AOF `json:"aof,omitempty"`
}

// Percentiles of one measured span, in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// ProcessCPU is the CPU time (user + system) one process spent during the
// measured span, in all and per completed link.
type ProcessCPU struct {
	Name          string  `json:"name"`
	CPUSeconds    float64 `json:"cpuSeconds"`
	MicrosPerUnit float64 `json:"cpuMicrosPerLink"`
	// ChildSeconds is what the process's children spent, apart from its
	// own time (so the figures above compare with earlier releases'): for a
	// Redis server, the children that rewrite its append-only file.
	ChildSeconds       float64 `json:"childCpuSeconds,omitempty"`
	ChildMicrosPerUnit float64 `json:"childCpuMicrosPerLink,omitempty"`
}

// ProcessMemory is the peak resident memory of one process.
type ProcessMemory struct {
	Name         string `json:"name"`
	PeakRSSBytes int64  `json:"peakRssBytes"`
}

func newReport(mode string, cfg Config) *Report {
	return &Report{Mode: mode, Links: cfg.Links, OpsPerLink: cfg.OpsPerLink, Integration: cfg.Integration,
		Errors: map[string]int{}, Latency: map[string]Percentiles{}}
}

func summarize(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return Percentiles{Count: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: at(1)}
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "mode            %s\n", r.Mode)
	fmt.Fprintf(w, "load            %s, %d links x %d operations (%s", r.Load, r.Links, r.OpsPerLink, r.Integration)
	if r.ProviderLatency != "" {
		fmt.Fprintf(w, ", provider latency %s", r.ProviderLatency)
	}
	fmt.Fprintf(w, ")\n")
	fmt.Fprintf(w, "completed       %d in %.2fs\n", r.Completed, r.DurationSec)
	fmt.Fprintf(w, "throughput      %.0f links/s\n", r.LinksPerSecond)
	if r.DeliveriesPerSecond > 0 {
		fmt.Fprintf(w, "deliveries      %.0f /s\n", r.DeliveriesPerSecond)
	}
	names := make([]string, 0, len(r.Latency))
	for k := range r.Latency {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 0 {
		fmt.Fprintf(w, "latency (ms)    %-22s %8s %8s %8s %8s\n", "", "p50", "p95", "p99", "max")
		for _, n := range names {
			p := r.Latency[n]
			fmt.Fprintf(w, "                %-22s %8.1f %8.1f %8.1f %8.1f\n", n, p.P50, p.P95, p.P99, p.Max)
		}
	}
	if len(r.Errors) == 0 {
		fmt.Fprintf(w, "errors          none\n")
	} else {
		var parts []string
		for k, v := range r.Errors {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "errors          %s\n", strings.Join(parts, " "))
	}
	fmt.Fprintf(w, "bad signatures  %d\n", r.BadSignatures)
	for _, p := range r.Processes {
		fmt.Fprintf(w, "peak memory     %-12s %.1f MiB\n", p.Name, float64(p.PeakRSSBytes)/(1<<20))
	}
	for _, c := range r.CPU {
		fmt.Fprintf(w, "cpu             %-12s %6.2fs  %6.0f µs per link\n", c.Name, c.CPUSeconds, c.MicrosPerUnit)
		if c.ChildSeconds > 0 {
			fmt.Fprintf(w, "cpu             %-12s %6.2fs  %6.0f µs per link in its children (AOF rewrites)\n", c.Name, c.ChildSeconds, c.ChildMicrosPerUnit)
		}
	}
	if r.PeakInFlight > 0 {
		fmt.Fprintf(w, "in flight       peak %d sessions, %.1f KiB per session\n", r.PeakInFlight, r.BytesPerSession/1024)
	}
	if a := r.AOF; a != nil {
		if a.Rewrites > 0 {
			fmt.Fprintf(w, "redis AOF       %d rewrites during the span\n", a.Rewrites)
		} else {
			fmt.Fprintf(w, "redis AOF       no rewrite, %.0f bytes appended per link\n", a.BytesPerLink)
		}
	}
}
