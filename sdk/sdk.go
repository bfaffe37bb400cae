// Package sdk holds linkflow's web drop-in: the dependency-free JavaScript
// library in js/ that opens a link's hosted page in a modal iframe or a
// popup and reports what the end user does there (published to npm as
// @linkflow/link, and served by the API at /sdk/link.js). See docs/sdk.md.
//
// js/link.js is the source; js/link.mjs (the same code as an ES module) and
// js/INTEGRITY (its Subresource Integrity hash) are made from it by
// `go test ./sdk -update`, and the tests fail when they are out of date.
//
// Every version ever served stays served, unchanged, at
// /sdk/v<version>/link.js (customers pin one with its integrity hash):
// js/released/link-<version>.js is its file and js/RELEASED its hash. A
// change to js/link.js needs a new Version; -update then adds it to both.
package sdk

import (
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"regexp"
	"strings"
)

// Version is the drop-in's version; js/package.json and js/link.js say the
// same (a test checks).
const Version = "1.0.2"

//go:embed js/link.js
var linkJS string

//go:embed js/released/*.js
var released embed.FS

var integrity = IntegrityOf(linkJS)

// IntegrityOf is the Subresource Integrity value of a script ("sha384-...").
func IntegrityOf(script string) string {
	h := sha512.Sum384([]byte(script))
	return "sha384-" + base64.StdEncoding.EncodeToString(h[:])
}

var versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// Script returns the drop-in of a version ("1.0.0"): this one's, or one
// released before (which never changes); false for a version never
// released.
func Script(version string) (string, bool) {
	if version == Version {
		return linkJS, true
	}
	if !versionRE.MatchString(version) {
		return "", false
	}
	b, err := released.ReadFile("js/released/link-" + version + ".js")
	if err != nil {
		return "", false
	}
	return string(b), true
}

// LinkJS returns the drop-in's script, js/link.js.
func LinkJS() string { return linkJS }

// Integrity is the Subresource Integrity value of LinkJS ("sha384-..."), for
// a script tag's integrity attribute.
func Integrity() string { return integrity }

// Major is the version's major part with a v ("v1"): /sdk/v1/link.js serves
// the newest drop-in of that major version.
func Major() string {
	major, _, _ := strings.Cut(Version, ".")
	return "v" + major
}
