package main

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkflow/linkflow/internal/testenv"
)

// readmeSection returns the part of README.md under heading (through the
// next heading of the same or a higher level; "#" lines in code blocks are
// not headings).
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	level := strings.Index(heading, " ")
	var out []string
	in, fenced := false, false
	for _, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if !fenced && strings.HasPrefix(line, "#") {
			if l := strings.Index(line, " "); l > 0 && strings.Trim(line[:l], "#") == "" {
				if in && l <= level {
					break
				}
				in = in || line == heading
				if line == heading {
					continue
				}
			}
		}
		if in {
			out = append(out, line)
		}
	}
	if !in {
		t.Fatalf("README.md has no %q", heading)
	}
	return strings.Join(out, "\n")
}

// codeBlocks returns the fenced blocks of lang in s.
func codeBlocks(s, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// The README's quick start works as pasted: dev prints the export lines it
// says to paste, and its "A link, end to end" blocks, run one after the
// other in bash with them, reach a succeeded link. Meanwhile linkflow
// listen shows the link's event and an admin command works with nothing
// but dev's data directory; a second dev on the same ports stops at once,
// naming the flag to change.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	quick := readmeSection(t, readme, "## Quick start")
	blocks := codeBlocks(readmeSection(t, readme, "### A link, end to end"), "sh")
	if len(blocks) < 3 {
		t.Fatalf("the quick start has %d sh blocks", len(blocks))
	}
	receiverMatchesCreate(t, readme, strings.Join(blocks, "\n"))

	port, natsPort, redisPort := freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)
	dataDir := t.TempDir()
	dev := startProc(t, "dev", []string{"LINKFLOW_DEV_API_KEY=readme-test-dev-api-key"},
		"dev", "--data-dir", dataDir, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--nats-port", fmt.Sprint(natsPort), "--redis-port", fmt.Sprint(redisPort), "--log-level", "warn")
	var exports []string
	testenv.Eventually(t, 30*time.Second, "dev's banner", func() bool {
		exports = nil
		sc := bufio.NewScanner(strings.NewReader(dev.output()))
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "export ") {
				exports = append(exports, sc.Text())
			}
		}
		return len(exports) == 4
	})
	// The banner's addresses are the real ones.
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, want := range []string{"export LINKFLOW_API_URL=" + api, "export LINKFLOW_API_KEY=readme-test-dev-api-key",
		"nats://127.0.0.1:" + fmt.Sprint(natsPort), "redis://127.0.0.1:" + fmt.Sprint(redisPort), "http://" + dev.metrics + "/metrics"} {
		if !strings.Contains(dev.output(), want) {
			t.Errorf("the banner lacks %q:\n%s", want, dev.output())
		}
	}
	// The README names every variable dev prints.
	for _, e := range exports {
		name, _, _ := strings.Cut(strings.TrimPrefix(e, "export "), "=")
		if !strings.Contains(quick, "export "+name+"=") {
			t.Errorf("the quick start does not show %s", name)
		}
	}

	// linkflow listen, with the exports only.
	env := append(cleanEnv(), exportEnv(t, exports)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listen := exec.CommandContext(ctx, linkflowBin, "listen")
	listen.Env = env
	var mu sync.Mutex
	var events strings.Builder
	out, _ := listen.StdoutPipe()
	listen.Stderr = listen.Stdout
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			events.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); _ = listen.Wait() })
	testenv.Eventually(t, 10*time.Second, "linkflow listen to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(events.String(), "listening")
	})

	// The blocks, as pasted, in one shell that pasted the exports.
	script := "set -euo pipefail\n" + strings.Join(exports, "\n") + "\n" + strings.Join(blocks, "\n")
	bctx, bcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer bcancel()
	sh := exec.CommandContext(bctx, "bash", "-c", script)
	sh.Env, sh.Dir = cleanEnv(), t.TempDir()
	got, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("the quick start's blocks failed: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), `"appClipUrl":"`+api+`/link/link_`) {
		t.Errorf("appClipUrl does not follow --http-addr:\n%s", got)
	}
	linkID := regexp.MustCompile(`"linkId":"(link_[0-9a-f]+)"`).FindStringSubmatch(string(got))
	if linkID == nil || !strings.Contains(string(got), `"status":"succeeded"`) {
		t.Fatalf("the quick start did not reach a succeeded link:\n%s", got)
	}
	testenv.Eventually(t, 10*time.Second, "linkflow listen to show the event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(events.String(), "link.succeeded") && strings.Contains(events.String(), linkID[1])
	})

	// An admin command with nothing but the exports.
	admin := exec.Command(linkflowBin, "orgs", "create", "--name", "Acme")
	admin.Env = env
	if out, err := admin.CombinedOutput(); err != nil || !strings.Contains(string(out), "organization    org_") {
		t.Fatalf("orgs create against dev: %v\n%s", err, out)
	}

	// linkflow bench drives dev with nothing but the exports: dev's API
	// (LINKFLOW_API_URL, not bench's default address), its key, and its
	// webhook secret to verify every webhook.
	bctx2, bcancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer bcancel2()
	drive := exec.CommandContext(bctx2, linkflowBin, "bench", "--links", "4", "--concurrency", "2")
	drive.Env = env
	if out, err := drive.CombinedOutput(); err != nil || !regexp.MustCompile(`completed\s+4 in(?s:.*)errors\s+none\s+bad signatures\s+0\n`).Match(out) {
		t.Fatalf("linkflow bench against dev with the exports: %v\n%s", err, out)
	}

	// A second dev on the same ports stops at once, naming the flag.
	for _, tt := range []struct{ flag, value string }{
		{"--http-addr", fmt.Sprintf("127.0.0.1:%d", port)},
		{"--nats-port", fmt.Sprint(natsPort)},
		{"--redis-port", fmt.Sprint(redisPort)},
	} {
		args := map[string]string{"--http-addr": fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)), "--nats-port": "-1", "--redis-port": "0"}
		args[tt.flag] = tt.value
		cmd := exec.Command(linkflowBin, "dev", "--data-dir", t.TempDir(), "--metrics-addr", "",
			"--http-addr", args["--http-addr"], "--nats-port", args["--nats-port"], "--redis-port", args["--redis-port"])
		cmd.Env = cleanEnv()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "choose another with "+tt.flag) || time.Since(start) > 10*time.Second {
			t.Errorf("a second dev with %s %s: %v after %s\n%s", tt.flag, tt.value, err, time.Since(start), out)
		}
	}
}

// exportEnv turns dev's export lines into environment entries.
func exportEnv(t *testing.T, exports []string) []string {
	t.Helper()
	var env []string
	for _, e := range exports {
		kv := strings.TrimPrefix(e, "export ")
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	return env
}

// receiverMatchesCreate checks that the README's Go receiver listens where
// the quick start's link sends its webhook.
func receiverMatchesCreate(t *testing.T, readme, quick string) {
	t.Helper()
	m := regexp.MustCompile(`"webhookUrl": "([^"]+)"`).FindStringSubmatch(quick)
	if m == nil {
		t.Fatal("the quick start's link has no webhookUrl")
	}
	u, err := url.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	receiver := strings.Join(codeBlocks(readmeSection(t, readme, "## Receiving webhooks"), "go"), "\n")
	for _, want := range []string{`"POST ` + u.Path + `"`, `ListenAndServe("` + u.Host + `"`} {
		if !strings.Contains(receiver, want) {
			t.Errorf("the README's receiver lacks %s, where the quick start's webhookUrl %s goes", want, u)
		}
	}
}
