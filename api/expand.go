package api

import (
	"net/http"
	"strings"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

// expandIntegration is the value of the expand query parameter (seed
// 003's expand) that puts the integration's catalog entry, as GET
// /v1/providers shows it, inline in each link or connection.
const expandIntegration = "integration"

// expansion is what a request asked expand to add.
type expansion struct{ integration bool }

// parseExpand reads expand: repeated, or comma-separated.
func parseExpand(r *http.Request) (expansion, error) {
	var x expansion
	for _, v := range r.URL.Query()["expand"] {
		for _, name := range strings.Split(v, ",") {
			switch strings.TrimSpace(name) {
			case expandIntegration:
				x.integration = true
			default:
				return x, badParam("expand", "takes integration (the integration's catalog entry inline), not "+quoteShort(name))
			}
		}
	}
	return x, nil
}

// of is the catalog entry of integration id when expand asked for it.
func (x expansion) of(reg *operations.Registry, id string) *operations.Integration {
	if !x.integration {
		return nil
	}
	in, _ := reg.Integration(id)
	return in
}

// expandedLink is a link with what expand added.
type expandedLink struct {
	linkflow.LinkView
	Integration *operations.Integration `json:"integration,omitempty"`
}

// expandedConnection is a connection with what expand added.
type expandedConnection struct {
	linkflow.ConnectionView
	Integration *operations.Integration `json:"integration,omitempty"`
}
