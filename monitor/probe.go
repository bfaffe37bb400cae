package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/linkflow/linkflow/internal/redact"
)

// Report is a status with the readiness of processes: what linkflow status
// --json and the operator page's GET /ops/status answer.
type Report struct {
	*Status
	Probes []Probe `json:"probes"`
}

// Probe is what one process's /readyz answered.
type Probe struct {
	Role string `json:"role"`
	Addr string `json:"addr"`
	// Ready is set when /readyz answered 200.
	Ready bool `json:"ready"`
	// Checks name each check and "ok" or why it fails. A process that is
	// not ready names only its failing checks.
	Checks map[string]string `json:"checks,omitempty"`
	// Error says why /readyz could not be asked.
	Error string `json:"error,omitempty"`
}

// ProbeTarget is a process to probe: a role and the address serving its
// /readyz (its --metrics-addr, or the api's --http-addr).
type ProbeTarget struct {
	Role string
	Addr string
}

// ParseProbes reads "role=host:port,..." (a bare address names itself);
// an address may be a URL (https://...).
func ParseProbes(s string) ([]ProbeTarget, error) {
	var out []ProbeTarget
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		role, addr, ok := strings.Cut(part, "=")
		if !ok {
			role, addr = part, part
		}
		if role == "" || addr == "" {
			return nil, fmt.Errorf("probe %q: want role=host:port", part)
		}
		out = append(out, ProbeTarget{Role: role, Addr: addr})
	}
	return out, nil
}

// ProbeAll asks every target's /readyz at once, with client (nil:
// http.DefaultClient), and returns the answers in the targets' order.
func ProbeAll(ctx context.Context, client *http.Client, targets []ProbeTarget) []Probe {
	out := make([]Probe, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { out[i] = ProbeReady(ctx, client, t) })
	}
	wg.Wait()
	return out
}

// ProbeReady asks one process's /readyz.
func ProbeReady(ctx context.Context, client *http.Client, t ProbeTarget) Probe {
	if client == nil {
		client = http.DefaultClient
	}
	p := Probe{Role: t.Role, Addr: redact.URLs(t.Addr)} // shown and printed: no password
	u := strings.TrimRight(t.Addr, "/")
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/readyz", nil)
	if err != nil {
		p.Error = redact.ParseError(err).Error()
		return p
	}
	resp, err := client.Do(req)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	// 200: {"status":"ready","checks":{name: "ok"}}; 503: the error
	// envelope, its detail one "name: why" line per failing check.
	var answer struct {
		Checks map[string]string `json:"checks"`
		Error  struct {
			Detail string `json:"detail"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		p.Error = fmt.Sprintf("%s: not a linkflow /readyz answer", resp.Status)
		return p
	}
	switch resp.StatusCode {
	case http.StatusOK:
		p.Ready, p.Checks = true, answer.Checks
	case http.StatusServiceUnavailable:
		p.Checks = map[string]string{}
		for _, line := range strings.Split(answer.Error.Detail, "\n") {
			if name, why, ok := strings.Cut(line, ": "); ok {
				p.Checks[name] = why
			}
		}
	default:
		p.Error = resp.Status
	}
	return p
}

// ErrNotReady is returned by NotReady when a probed process is not ready.
var ErrNotReady = errors.New("not ready")

// NotReady names the probed processes that are not ready, or returns nil.
func NotReady(probes []Probe) error {
	var names []string
	for _, p := range probes {
		if !p.Ready {
			names = append(names, p.Role+" ("+p.Addr+")")
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return fmt.Errorf("%w: %s", ErrNotReady, strings.Join(names, ", "))
}
