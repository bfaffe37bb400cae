package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// report is what a bench run measured. JSON field names are stable.
type report struct {
	Mode                string                 `json:"mode"`
	Links               int                    `json:"links"`
	Completed           int                    `json:"completed"`
	OpsPerLink          int                    `json:"opsPerLink"`
	Integration         string                 `json:"integration"`
	ProviderLatency     string                 `json:"providerLatency,omitempty"`
	Load                string                 `json:"load"`
	DurationSec         float64                `json:"durationSeconds"`
	LinksPerSecond      float64                `json:"linksPerSecond"`
	DeliveriesPerSecond float64                `json:"deliveriesPerSecond,omitempty"`
	Latency             map[string]percentiles `json:"latencyMs"`
	Errors              map[string]int         `json:"errors"`
	BadSignatures       int                    `json:"badSignatures"`
	Processes           []procStat             `json:"processes,omitempty"`
	// CPU is each process's CPU time during the measured span, and per link
	// (or delivery): where the time goes.
	CPU             []procCPU `json:"cpu,omitempty"`
	PeakInFlight    int       `json:"peakInFlight,omitempty"`
	BytesPerSession float64   `json:"bytesPerInFlightSession,omitempty"`
}

// percentiles of one measured span, in milliseconds.
type percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

type procCPU struct {
	Name          string  `json:"name"`
	CPUSeconds    float64 `json:"cpuSeconds"`
	MicrosPerUnit float64 `json:"cpuMicrosPerLink"`
}

type procStat struct {
	Name         string `json:"name"`
	PeakRSSBytes int64  `json:"peakRssBytes"`
}

func summarize(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return percentiles{Count: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: at(1)}
}

func (r *report) print(w io.Writer) {
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
	}
	if r.PeakInFlight > 0 {
		fmt.Fprintf(w, "in flight       peak %d sessions, %.1f KiB per session\n", r.PeakInFlight, r.BytesPerSession/1024)
	}
}
