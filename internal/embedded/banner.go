package embedded

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// CheckFree fails when addr cannot be listened on, saying which of dev's
// servers (what) wanted it and the flag that moves it. It listens and closes
// at once: dev checks every address before it starts anything.
func CheckFree(addr, what, flag string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		why := err.Error()
		if errors.Is(err, syscall.EADDRINUSE) {
			why = "the address is in use (another linkflow dev, or another server)"
		}
		return fmt.Errorf("%s cannot listen on %s: %s; choose another with %s", what, addr, why, flag)
	}
	return ln.Close()
}

// Banner is what `linkflow dev` prints once it runs: where everything is,
// the development organization's secrets, and export lines that the README's
// commands, the admin commands and `linkflow listen` read.
type Banner struct {
	API, Metrics, NATS, Redis string
	DataDir                   string // absolute
	Org                       string
	State                     *DevState
	// Command runs linkflow from the shell dev was started in (Command()).
	Command string
}

// Command is how to run the running linkflow binary again from the current
// directory: its path (relative when it is below), or "go run ./cmd/linkflow"
// when it was built by go run.
func Command() string {
	exe, err := os.Executable()
	if err != nil || strings.Contains(exe, "go-build") {
		return "go run ./cmd/linkflow"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
			return "./" + rel
		}
	}
	return exe
}

// Print writes the banner to w.
func (b Banner) Print(w io.Writer) {
	api := strings.TrimRight(b.API, "/")
	metrics := "off"
	if b.Metrics != "" {
		metrics = "http://" + b.Metrics + "/metrics"
	}
	fmt.Fprintf(w, `
linkflow dev is running
  API             %s   (the OpenAPI document: %s/openapi.yaml)
  organization    %s
  API key         %s
  webhook secret  %s
  NATS            %s
  Redis           %s
  metrics         %s
  data            %s

In another shell, paste these lines; the README's commands, the admin commands
(linkflow orgs create ...), "linkflow listen" and the README's webhook receiver
read them:

export LINKFLOW_API_URL=%s
export LINKFLOW_API_KEY=%s
export LINKFLOW_DATA_DIR=%s
export LINKFLOW_WEBHOOK_SECRET=%s

Try it:
  curl -s "$LINKFLOW_API_URL/v1/links" -H "Authorization: Bearer $LINKFLOW_API_KEY" -H "Content-Type: application/json" \
    -d '{"integrationId":"tmobile","operations":[{"resource":"paymentMethod","action":"read"}]}'
Watch the events (the webhooks' bodies) as links end:
  %s listen

`, api, api, b.Org, b.State.APIKey, b.State.WebhookSecret, b.NATS, b.Redis, metrics, b.DataDir,
		shellQuote(api), shellQuote(b.State.APIKey), shellQuote(b.DataDir), shellQuote(b.State.WebhookSecret), b.Command)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
