package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/linkflow/linkflow/internal/redact"
	"github.com/linkflow/linkflow/monitor"
	"github.com/linkflow/linkflow/outbox"
)

// OpsCommand is linkflow status, linkflow dlq list or linkflow dlq replay
// with what its flags say.
type OpsCommand struct {
	// Name is "status", "dlq list" or "dlq replay".
	Name string
	// NATS says how to reach NATS; the streams are read, never changed.
	NATS outbox.ConnectConfig
	// Probes are the processes whose /readyz status asks:
	// "role=host:port,..." (monitor.ParseProbes).
	Probes string
	// JSON writes JSON instead of text (status, dlq list).
	JSON bool
	// Limit bounds the dead letters listed, the newest. Default 100.
	Limit int
	// Seq is the dead letter to replay; All replays every one.
	Seq uint64
	All bool
	// NATSURLGiven says NATS.URL was given: otherwise the NATS of the
	// linkflow dev whose data directory the Admin was opened with, if any.
	NATSURLGiven bool
}

// RunOps connects to NATS (Redis is the Admin's) and runs c.
func (a *Admin) RunOps(ctx context.Context, c OpsCommand) error {
	targets, err := monitor.ParseProbes(c.Probes)
	if err != nil {
		return err
	}
	if c.Name == "dlq replay" && (c.Seq == 0) == !c.All {
		return fmt.Errorf("dlq replay: give --seq N or --all")
	}
	if !c.NATSURLGiven && a.DevNATSURL != "" {
		c.NATS.URL = a.DevNATSURL
	}
	nc, js, natsErr := outbox.Dial(c.NATS)
	switch {
	case natsErr != nil:
		natsErr = fmt.Errorf("nats at %s: %w", redact.URLs(c.NATS.URL), natsErr)
		if c.Name != "status" {
			return natsErr
		}
		// status shows what Redis holds all the same (the outbox waiting
		// to be published, above all), and names NATS under its errors.
	default:
		defer nc.Close()
	}
	switch c.Name {
	case "status":
		m, err := monitor.New(monitor.Config{Store: a.Store, JetStream: js, JetStreamErr: natsErr})
		if err != nil {
			return err
		}
		return a.Status(ctx, m, targets, c.JSON)
	case "dlq list":
		return a.ListDeadLetters(ctx, js, c.Limit, c.JSON)
	case "dlq replay":
		return a.ReplayDeadLetters(ctx, js, c.Seq, c.All)
	}
	return fmt.Errorf("unknown command %q", c.Name)
}

// Status shows the deployment's status and asks each target's /readyz. It
// fails when a probed process is not ready, or a part of the status could
// not be read (after showing everything), so that scripts can branch on it.
func (a *Admin) Status(ctx context.Context, m *monitor.Monitor, targets []monitor.ProbeTarget, asJSON bool) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	probes := make(chan []monitor.Probe, 1)
	go func() { probes <- monitor.ProbeAll(pctx, nil, targets) }()
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	r := monitor.Report{Status: st, Probes: <-probes}
	if r.Probes == nil {
		r.Probes = []monitor.Probe{}
	}
	if asJSON {
		enc := json.NewEncoder(a.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		writeStatus(a.Out, r)
	}
	if err := monitor.NotReady(r.Probes); err != nil {
		return err
	}
	if len(st.Errors) > 0 {
		return fmt.Errorf("%d part(s) of the status could not be read: %s", len(st.Errors), strings.Join(st.Errors, "; "))
	}
	return nil
}

func seconds(s float64) string { return monitor.Words(time.Duration(s * float64(time.Second))) }
