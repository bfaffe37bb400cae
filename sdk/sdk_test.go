package sdk_test

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/linkflow/linkflow/sdk"
)

var update = flag.Bool("update", false, "rewrite js/link.mjs, js/index.d.mts, js/INTEGRITY and the integrity hashes in the docs from js/link.js and js/index.d.ts")

// docs name the drop-in's integrity hash and version; they must say the
// embedded file's.
var docs = []string{"../docs/sdk.md", "../README.md", "js/README.md"}

const (
	libStart = "  // -- library: link.mjs is this part, made by `go test ./sdk -update` --\n"
	libEnd   = "  // -- end of library --\n"
)

// esm makes link.mjs from link.js: the library part, as an ES module with a
// named and a default export.
func esm(t *testing.T, src string) string {
	t.Helper()
	header, rest, ok := strings.Cut(src, "\n")
	_, body, ok2 := strings.Cut(rest, libStart)
	body, _, ok3 := strings.Cut(body, libEnd)
	if !ok || !ok2 || !ok3 {
		t.Fatal("js/link.js lacks its header line or the library markers")
	}
	return header + "\n// Made from link.js by `go test ./sdk -update`; edit link.js.\nconst Linkflow = (function () {\n" + body +
		"})();\nexport { Linkflow };\nexport default Linkflow;\n"
}

func TestGeneratedFiles(t *testing.T) {
	src := sdk.LinkJS()
	disk, err := os.ReadFile("js/link.js")
	if err != nil || string(disk) != src {
		t.Fatalf("js/link.js is not the embedded file: %v", err)
	}
	h := sha512.Sum384([]byte(src))
	want := "sha384-" + base64.StdEncoding.EncodeToString(h[:])
	if sdk.Integrity() != want {
		t.Fatalf("Integrity() = %s, want %s", sdk.Integrity(), want)
	}
	dts, err := os.ReadFile("js/index.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"js/link.mjs":    esm(t, src),
		"js/index.d.mts": "// Made from index.d.ts by `go test ./sdk -update`: the same types, for import.\n" + string(dts),
		"js/INTEGRITY":   want + "  link.js " + sdk.Version + "\n",
	}
	hashRE := regexp.MustCompile(`sha384-[A-Za-z0-9+/]{64}`)
	pinnedRE := regexp.MustCompile(`/sdk/v[0-9]+\.[0-9]+\.[0-9]+/link\.js`)
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Error(err)
			continue
		}
		pinned := "/sdk/v" + sdk.Version + "/link.js"
		files[d] = pinnedRE.ReplaceAllString(hashRE.ReplaceAllString(string(b), want), pinned)
		if !strings.Contains(files[d], want) || !strings.Contains(files[d], pinned) {
			t.Errorf("%s does not show the drop-in's integrity hash and %s", d, pinned)
		}
	}
	for name, content := range files {
		if *update {
			if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != content {
			t.Errorf("%s is out of date (%v): run go test ./sdk -update", name, err)
		}
	}
}

func TestVersionsAgree(t *testing.T) {
	t.Parallel()
	var pkg struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Types   string `json:"types"`
		License string `json:"license"`
		Files   []string
	}
	b, err := os.ReadFile("js/package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	if pkg.Version != sdk.Version || pkg.Name == "" || pkg.Types == "" || pkg.License == "" {
		t.Fatalf("package.json: %+v; want version %s with a name, types and a license", pkg, sdk.Version)
	}
	for _, f := range pkg.Files {
		if _, err := os.Stat("js/" + f); err != nil {
			t.Errorf("package.json lists %s: %v", f, err)
		}
	}
	src := sdk.LinkJS()
	if !strings.Contains(src, `var VERSION = "`+sdk.Version+`";`) || !strings.HasPrefix(src, "/*! @linkflow/link "+sdk.Version+":") {
		t.Fatalf("js/link.js does not say version %s", sdk.Version)
	}
	if sdk.Major() != "v1" {
		t.Fatalf("Major() = %s", sdk.Major())
	}
}

// Every version ever served stays as it was: js/RELEASED lists each with
// its hash, js/released holds its file, and the current version is one of
// them, the same as js/link.js. A change to js/link.js without a new
// Version fails here (pinned pages would refuse it); with a new Version,
// -update adds the release.
func TestReleasedVersionsNeverChange(t *testing.T) {
	b, err := os.ReadFile("js/RELEASED")
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[string]string{}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		lines = append(lines, line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		v, h, ok := strings.Cut(line, " ")
		if !ok || hashes[v] != "" {
			t.Fatalf("js/RELEASED: %q", line)
		}
		hashes[v] = h
	}
	current := sdk.IntegrityOf(sdk.LinkJS())
	switch h, ok := hashes[sdk.Version]; {
	case ok && h != current:
		t.Fatalf("js/link.js changed, but version %s was released (as %s): give it a new Version", sdk.Version, h)
	case !ok && *update:
		lines = append(lines, sdk.Version+" "+current)
		hashes[sdk.Version] = current
		if err := os.WriteFile("js/released/link-"+sdk.Version+".js", []byte(sdk.LinkJS()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("js/RELEASED", []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	case !ok:
		t.Fatalf("version %s is not in js/RELEASED: run go test ./sdk -update", sdk.Version)
	}
	files, err := os.ReadDir("js/released")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(hashes) {
		t.Errorf("js/released has %d files, js/RELEASED %d versions", len(files), len(hashes))
	}
	for v, h := range hashes {
		disk, err := os.ReadFile("js/released/link-" + v + ".js")
		if err != nil || sdk.IntegrityOf(string(disk)) != h {
			t.Errorf("js/released/link-%s.js is not the version released as %s (%v)", v, h, err)
		}
		if s, ok := sdk.Script(v); !ok || sdk.IntegrityOf(s) != h {
			t.Errorf("Script(%q) does not serve the version released", v)
		}
	}
	for _, v := range []string{"0.0.9", "1.0", "../link", ""} {
		if _, ok := sdk.Script(v); ok {
			t.Errorf("Script(%q) serves a version never released", v)
		}
	}
}
