package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDoc is the API reference, OpenAPI 3.1. A test keeps it true: every
// route the server registers is in it, and everything in it is a route.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPI returns the API reference (OpenAPI 3.1, YAML).
func OpenAPI() []byte { return openAPIDoc }

// openAPI is GET /openapi.yaml.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDoc)
}
