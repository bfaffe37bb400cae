package api

import (
	"slices"

	"github.com/linkflow/linkflow"
)

// Embedding: the web drop-in (package sdk) opens a link's hosted page in an
// iframe or a popup on the customer's page, adding ?origin= with that page's
// origin. The organization's allowed origins decide everything:
//
//   - the page's frame-ancestors lists exactly them ('none' when there are
//     none), so a browser shows the page in a frame only on those pages;
//   - the page talks to the drop-in (postMessage) only when ?origin= is one
//     of them, and then only to that origin, never "*"; a window of another
//     origin does not get the message even if the query lies;
//   - the messages say {source, type, linkId, status, stage}: never the
//     claim code, credentials or the return URL's verifier;
//   - embedded, the page does not redirect to the link's return URL: the
//     drop-in closes and tells the customer's page instead.
//
// http origins (localhost only: linkflow.ParseOrigin) count only in dev.

// frameAncestors returns the origins of org that may frame its pages and
// hear from them.
func (s *Server) frameAncestors(org *linkflow.Org) []string {
	if org == nil {
		return nil
	}
	out := make([]string, 0, len(org.AllowedOrigins))
	for _, o := range org.AllowedOrigins {
		// Stored normalised; checked again because it goes into a header.
		if n, err := linkflow.ParseOrigin(o); err == nil && n == o && (s.cfg.Dev || !linkflow.DevOrigin(o)) {
			out = append(out, o)
		}
	}
	return out
}

// embedOrigin returns the origin the page may post to: the one the drop-in
// named, when it is allowed; "" otherwise.
func embedOrigin(allowed []string, named string) string {
	if named == "" {
		return ""
	}
	o, err := linkflow.ParseOrigin(named)
	if err != nil || !slices.Contains(allowed, o) {
		return ""
	}
	return o
}

// stageOf is what the page tells the drop-in of a link's status: the stage
// of the flow the end user is at.
func stageOf(state string) string {
	switch state {
	case "login":
		return "opened"
	case "working":
		return "working"
	case "mfa":
		return "challenge"
	}
	return "finished"
}
