package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/linkflow/linkflow/store"
)

// devDeployment is `linkflow dev` started by bench as a child process.
type devDeployment struct {
	dir    string
	dev    *child
	url    string
	apiKey string
	secret string
}

// devArgs turn off what would measure the limiter instead of linkflow: the
// API's rate limits. Everything else is dev's defaults.
var devArgs = []string{"--key-rate-limit", "0", "--client-rate-limit", "0", "--claim-guess-limit", "0"}

func startDevDeployment(ctx context.Context, cfg Config) (*devDeployment, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "linkflow-bench-")
	if err != nil {
		return nil, err
	}
	d := &devDeployment{dir: dir, url: "http://" + addr, apiKey: store.NewAPIKey(), secret: store.NewWebhookSecret()}
	args := []string{"dev", "--data-dir", filepath.Join(dir, "data"), "--http-addr", addr, "--public-url", d.url,
		"--nats-port", "-1", "--redis-port", "0", "--log-level", "warn", "--log-format", "json",
		"--sandbox-latency", cfg.ProviderLatency.String(), "--metrics-addr", metricsAddr,
		"--concurrency", strconv.Itoa(cfg.WorkerConcurrency)}
	args = append(args, devArgs...)
	if !cfg.SandboxInRedis {
		args = append(args, "--sandbox-memory")
	}
	env := []string{"LINKFLOW_DEV_API_KEY=" + d.apiKey, "LINKFLOW_DEV_WEBHOOK_SECRET=" + d.secret}
	fmt.Fprintf(cfg.Progress, "bench: starting linkflow dev in %s\n", dir)
	if d.dev, err = startChild(ctx, cfg.Binary, "dev", metricsAddr, env, args...); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// Metrics come up before the API listens: wait until it is ready.
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(d.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d, nil
			}
		}
		select {
		case <-ctx.Done():
			d.stop(false)
			return nil, ctx.Err()
		case <-d.dev.done:
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("dev exited:\n%s", d.dev.tail.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (d *devDeployment) stop(keep bool) {
	d.dev.stop()
	if !keep {
		_ = os.RemoveAll(d.dir)
	}
}
