// Package sdk holds linkflow's web drop-in: the dependency-free JavaScript
// library in js/ that opens a link's hosted page in a modal iframe or a
// popup and reports what the end user does there (published to npm as
// @linkflow/link, and served by the API at /sdk/link.js). See docs/sdk.md.
//
// js/link.js is the source; js/link.mjs (the same code as an ES module) and
// js/INTEGRITY (its Subresource Integrity hash) are made from it by
// `go test ./sdk -update`, and the tests fail when they are out of date.
package sdk

import (
	"crypto/sha512"
	_ "embed"
	"encoding/base64"
	"strings"
)

// Version is the drop-in's version; js/package.json and js/link.js say the
// same (a test checks).
const Version = "1.0.0"

//go:embed js/link.js
var linkJS string

var integrity = func() string {
	h := sha512.Sum384([]byte(linkJS))
	return "sha384-" + base64.StdEncoding.EncodeToString(h[:])
}()

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
