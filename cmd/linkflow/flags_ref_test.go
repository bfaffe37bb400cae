package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// flagCommands are the commands docs/flags.md shows, in its order.
var flagCommands = [][]string{
	{}, {"dev"}, {"api"}, {"worker"}, {"dispatcher"},
	{"orgs", "create"}, {"orgs", "update"}, {"orgs", "rotate-webhook-secret"},
	{"keys", "create"}, {"keys", "revoke"}, {"keys", "generate"}, {"keys", "rotate-data"},
	{"users", "create"}, {"users", "revoke-tokens"},
	{"status"}, {"dlq", "list"}, {"dlq", "replay"}, {"listen"}, {"bench"}, {"sandbox-provider"},
}

const flagsHeader = `# Flags

Every command's flags, as ` + "`linkflow <command> -h`" + ` prints them, with the defaults of a process that has no
` + "`LINKFLOW_`" + ` variable set. This file is generated: ` + "`TestFlagsReference`" + ` fails when it differs from what the
binary prints. After changing a flag, write it again with
` + "`LINKFLOW_UPDATE_FLAGS=1 go test -run TestFlagsReference ./cmd/linkflow`" + `.
`

// docs/flags.md is what the binary prints for every command's -h, so every
// flag, its default and its meaning are documented, and stay so.
func TestFlagsReference(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(flagsHeader)
	for _, args := range flagCommands {
		cmd := exec.Command(linkflowBin, append(args, "-h")...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // defaults, not this machine's settings
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("linkflow %s -h: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(string(out), "Usage") {
			t.Fatalf("linkflow %s -h printed no usage:\n%s", strings.Join(args, " "), out)
		}
		b.WriteString("\n## " + strings.TrimSpace("linkflow "+strings.Join(args, " ")) + "\n\n```text\n")
		b.WriteString(strings.TrimRight(string(out), "\n") + "\n```\n")
	}
	const path = "../../docs/flags.md"
	if os.Getenv("LINKFLOW_UPDATE_FLAGS") == "1" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (write it with LINKFLOW_UPDATE_FLAGS=1 go test -run TestFlagsReference ./cmd/linkflow)", err)
	}
	if string(got) != b.String() {
		t.Fatalf("docs/flags.md differs from what linkflow prints; write it again with "+
			"LINKFLOW_UPDATE_FLAGS=1 go test -run TestFlagsReference ./cmd/linkflow\n--- first difference at byte %d",
			firstDiff(string(got), b.String()))
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
