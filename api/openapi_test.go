package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/linkflow/linkflow/api"
)

// undocumented lists routes the server registers that the API reference
// leaves out on purpose, each with the reason. Keep it short.
var undocumented = map[string]string{
	"GET /sdk/link.js":           "the web drop-in's JavaScript for customers' pages, not the JSON API (docs/sdk.md)",
	"GET /sdk/{version}/link.js": "the web drop-in's JavaScript for customers' pages, not the JSON API (docs/sdk.md)",
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIMatchesRoutes keeps api/openapi.yaml true: every route the
// server registers is documented, and every documented route exists.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, nil) // with the webhook and dev sandbox routes

	r := s.Do(t, http.MethodGet, "/openapi.yaml", "", nil)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("Content-Type %q", ct)
	}
	if !bytes.Equal(r.Body, api.OpenAPI()) {
		t.Fatal("GET /openapi.yaml is not the embedded document")
	}

	var doc map[string]any
	if err := yaml.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("GET /openapi.yaml answers without X-Request-Id")
	}
	// The document describes its own response truly.
	selfSchema, err := resolve(doc, "#/paths/~1openapi.yaml/get/responses/200/content/application~1yaml/schema")
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("self.json", selfSchema); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("self.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Errorf("GET /openapi.yaml does not match the schema it declares: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi: %q, want 3.1.x", v)
	}
	paths, _ := doc["paths"].(map[string]any)
	documented := map[string]bool{}
	opIDs := map[string]string{}
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for _, m := range httpMethods {
			op, ok := ops[m].(map[string]any)
			if !ok {
				continue
			}
			route := strings.ToUpper(m) + " " + path
			documented[route] = true
			checkOperation(t, doc, route, path, ops, op, opIDs)
		}
	}

	registered := map[string]bool{}
	for _, route := range s.API.Routes() {
		registered[route] = true
		if reason, ok := undocumented[route]; ok {
			if reason == "" {
				t.Errorf("%s is left out of openapi.yaml without a reason", route)
			}
			continue
		}
		if !documented[route] {
			t.Errorf("%s is registered but not in api/openapi.yaml", route)
		}
	}
	for route := range documented {
		if !registered[route] {
			t.Errorf("%s is in api/openapi.yaml but the server does not register it", route)
		}
	}
	for route := range undocumented {
		if !registered[route] {
			t.Errorf("undocumented lists %s, which the server does not register", route)
		}
	}

	// Every $ref points at something.
	walkRefs(doc, func(ref string) {
		if _, err := resolve(doc, ref); err != nil {
			t.Errorf("$ref %s: %v", ref, err)
		}
	})
	if _, ok := doc["webhooks"].(map[string]any)["linkEvent"]; !ok {
		t.Error("the webhook payload is not documented under webhooks")
	}
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// checkOperation checks what a reader of one operation relies on: a unique
// operationId, responses, and a declaration of each path parameter.
func checkOperation(t *testing.T, doc map[string]any, route, path string, item, op map[string]any, ids map[string]string) {
	t.Helper()
	id, _ := op["operationId"].(string)
	if id == "" {
		t.Errorf("%s has no operationId", route)
	} else if prev, dup := ids[id]; dup {
		t.Errorf("%s and %s share operationId %s", route, prev, id)
	}
	ids[id] = route
	resp, _ := op["responses"].(map[string]any)
	if len(resp) == 0 {
		t.Errorf("%s documents no responses", route)
	}
	// What every route can answer: 500, and X-Request-Id on every response;
	// a route that reads a body also 413 and 415.
	want := []string{"500"}
	if _, ok := op["requestBody"]; ok {
		want = append(want, "413", "415")
	}
	for _, code := range want {
		if _, ok := resp[code]; !ok {
			t.Errorf("%s does not document its %s response", route, code)
		}
	}
	for code, r := range resp {
		rm, _ := r.(map[string]any)
		if ref, ok := rm["$ref"].(string); ok {
			v, err := resolve(doc, ref)
			if err != nil {
				continue // reported by the $ref walk
			}
			rm, _ = v.(map[string]any)
		}
		headers, _ := rm["headers"].(map[string]any)
		if _, ok := headers["X-Request-Id"]; !ok {
			t.Errorf("%s %s does not document the X-Request-Id header", route, code)
		}
	}
	declared := map[string]bool{}
	for _, params := range []any{item["parameters"], op["parameters"]} {
		list, _ := params.([]any)
		for _, p := range list {
			pm, _ := p.(map[string]any)
			if ref, ok := pm["$ref"].(string); ok {
				v, err := resolve(doc, ref)
				if err != nil {
					continue // reported by the $ref walk
				}
				pm, _ = v.(map[string]any)
			}
			if pm["in"] == "path" {
				declared[fmt.Sprint(pm["name"])] = true
			}
		}
	}
	var params []string
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		params = append(params, m[1])
		if !declared[m[1]] {
			t.Errorf("%s does not declare its path parameter %s", route, m[1])
		}
	}
	for name := range declared {
		if !slices.Contains(params, name) {
			t.Errorf("%s declares path parameter %s, which its path lacks", route, name)
		}
	}
}

func walkRefs(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				f(s)
				continue
			}
			walkRefs(e, f)
		}
	case []any:
		for _, e := range x {
			walkRefs(e, f)
		}
	}
}

// resolve follows a local JSON pointer ("#/components/schemas/Link").
func resolve(doc map[string]any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	var cur any = doc
	for _, part := range strings.Split(rest, "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("no %s", part)
		}
	}
	return cur, nil
}

// TestOpenAPIQueryParameters keeps the server's list of query parameters
// per route (anything else is refused) and the document's in step.
func TestOpenAPIQueryParameters(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := yaml.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for _, m := range httpMethods {
			op, ok := ops[m].(map[string]any)
			if !ok || m == "options" {
				continue
			}
			list, _ := op["parameters"].([]any)
			for _, p := range list {
				pm, _ := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					v, _ := resolve(doc, ref)
					pm, _ = v.(map[string]any)
				}
				if pm["in"] == "query" {
					route := strings.ToUpper(m) + " " + path
					documented[route] = append(documented[route], fmt.Sprint(pm["name"]))
				}
			}
		}
	}
	served := api.QueryParams()
	for route, names := range documented {
		got := slices.Sorted(slices.Values(served[route]))
		if want := slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
			t.Errorf("%s: the server takes %v, openapi.yaml documents %v", route, got, want)
		}
	}
	for route := range served {
		if _, ok := documented[route]; !ok {
			t.Errorf("%s takes query parameters openapi.yaml does not document", route)
		}
	}
}
