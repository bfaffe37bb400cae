package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The drift test keeps this package and api/openapi.yaml together; its
// tables (mapped, leftOut, allowed) are in drift_table_test.go. It fails
// when an operation of the document is neither mapped to methods nor left
// out with a reason; when a mapped operation is gone or moved; when a method
// sends another method, path, query parameter, body type or authentication
// than its operation documents; and when the properties of a request or 2xx
// answer schema differ from the json tags of the Go type (following $ref,
// allOf, array items and nested objects, down to the types left opaque:
// json.RawMessage, any, maps).

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// docOp is an operation of the document.
type docOp struct {
	method, path string
	op           map[string]any
	params       []map[string]any
}

func loadDoc(t *testing.T) (map[string]any, map[string]docOp) {
	t.Helper()
	b, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	ops := map[string]docOp{}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		im, _ := item.(map[string]any)
		for _, m := range httpMethods {
			op, ok := im[m].(map[string]any)
			if !ok {
				continue
			}
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s %s has no operationId", m, path)
				continue
			}
			d := docOp{method: strings.ToUpper(m), path: path, op: op}
			for _, list := range []any{im["parameters"], op["parameters"]} {
				ps, _ := list.([]any)
				for _, p := range ps {
					d.params = append(d.params, asMap(resolve(t, doc, p)))
				}
			}
			ops[id] = d
		}
	}
	return doc, ops
}

// TestDriftOperations checks that every operation is mapped or left out,
// and that each mapped method sends what its operation documents.
func TestDriftOperations(t *testing.T) {
	t.Parallel()
	doc, ops := loadDoc(t)
	for id, op := range ops {
		_, isMapped := mapped[id]
		reason, isLeft := leftOut[id]
		switch {
		case isMapped && isLeft:
			t.Errorf("%s is both mapped and left out", id)
		case isLeft && reason == "":
			t.Errorf("%s is left out without a reason", id)
		case !isMapped && !isLeft:
			t.Errorf("%s (%s %s) has no client method and is not in leftOut", id, op.method, op.path)
		}
	}
	for id := range leftOut {
		if _, ok := ops[id]; !ok {
			t.Errorf("leftOut lists %s, which the document no longer has", id)
		}
	}

	// Every exported method of Client calls a mapped operation or is a
	// helper, and every mapped method exists.
	ct := reflect.TypeFor[*Client]()
	covered := map[string]bool{}
	for _, m := range mapped {
		for _, name := range m.methods {
			covered[name] = true
			if _, ok := ct.MethodByName(name); !ok {
				t.Errorf("mapped method %s does not exist", name)
			}
		}
	}
	for i := range ct.NumMethod() {
		name := ct.Method(i).Name
		if !covered[name] && helperMethods[name] == "" {
			t.Errorf("Client.%s is neither mapped to an operation nor a helper", name)
		}
	}

	for id, m := range mapped {
		op, ok := ops[id]
		if !ok {
			t.Errorf("mapped operation %s is gone from the document", id)
			continue
		}
		if op.method != m.method || op.path != m.path {
			t.Errorf("%s is %s %s in the document, mapped as %s %s", id, op.method, op.path, m.method, m.path)
			continue
		}
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			checkRequests(t, doc, id, op, m)
		})
	}
}

// sent is what one request of the client carried.
type sent struct {
	method, path, contentType string
	query                     []string
	auth, idempotencyKey      bool
	body                      []byte
}

// checkRequests runs m.call against a server that records each request and
// compares them with the document.
func checkRequests(t *testing.T, doc map[string]any, id string, op docOp, m mapping) {
	var mu sync.Mutex
	var got []sent
	status := "999"
	for code := range m.answers {
		status = min(status, code)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s := sent{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"),
			auth: r.Header.Get("Authorization") != "", idempotencyKey: r.Header.Get("Idempotency-Key") != "", body: b}
		for k := range r.URL.Query() {
			s.query = append(s.query, k)
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		code := 200
		_ = json.Unmarshal([]byte(status), &code)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, APIKey: "lfk_drift", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.call(context.Background(), c); err != nil {
		t.Fatalf("call: %v", err)
	}
	if len(got) == 0 {
		t.Fatal("the methods sent no request")
	}

	pathRE := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(op.path), `[^/]+`) + "$")
	docQuery, docHeaders := map[string]bool{}, map[string]bool{}
	for _, p := range op.params {
		switch p["in"] {
		case "query":
			docQuery[str(p["name"])] = true
		case "header":
			docHeaders[str(p["name"])] = true
		}
	}
	secured := true
	if sec, ok := op.op["security"].([]any); ok && len(sec) == 0 {
		secured = false
	}
	reqBody := asMap(op.op["requestBody"])
	content := asMap(reqBody["content"])
	sentQuery := map[string]bool{}
	for _, s := range got {
		if s.method != op.method || !pathRE.MatchString(s.path) {
			t.Errorf("sent %s %s, want %s %s", s.method, s.path, op.method, op.path)
		}
		for _, k := range s.query {
			sentQuery[k] = true
			if !docQuery[k] {
				t.Errorf("sent query parameter %s, which the document does not have", k)
			}
		}
		if s.auth != secured {
			t.Errorf("sent Authorization: %v; the operation's security wants it: %v", s.auth, secured)
		}
		if docHeaders["Idempotency-Key"] && !s.idempotencyKey {
			t.Error("sent no Idempotency-Key")
		}
		switch {
		case reqBody == nil && len(s.body) > 0:
			t.Errorf("sent a body (%s); the operation takes none", s.body)
		case reqBody != nil && len(s.body) > 0 && content[s.contentType] == nil:
			t.Errorf("sent a %s body; the document takes %v", s.contentType, keys(content))
		case reqBody != nil && len(s.body) == 0 && reqBody["required"] == true:
			t.Error("sent no body; the document requires one")
		}
	}
	for k := range docQuery {
		if !sentQuery[k] && allowed[id+"?"+k] == "" {
			t.Errorf("the document's query parameter %s is never sent", k)
		}
	}

	// The body and the answers against their schemas.
	if (reqBody == nil) != (m.body == nil) {
		t.Errorf("request body documented: %v, Go type: %v", reqBody != nil, m.body)
	}
	for _, media := range content {
		if m.body != nil {
			checkSchema(t, doc, m.body, asMap(media)["schema"], true)
		}
	}
	responses := asMap(op.op["responses"])
	for code, r := range responses {
		if !strings.HasPrefix(code, "2") {
			continue
		}
		typ, ok := m.answers[code]
		if !ok {
			t.Errorf("the document's %s answer has no Go type", code)
			continue
		}
		schema := asMap(asMap(asMap(resolve(t, doc, r))["content"])["application/json"])["schema"]
		checkSchema(t, doc, typ, schema, false)
	}
	for code := range m.answers {
		if responses[code] == nil {
			t.Errorf("mapped answer %s is not documented", code)
		}
	}
}

// TestDriftErrorEnvelope checks the error envelope the client reads.
func TestDriftErrorEnvelope(t *testing.T) {
	t.Parallel()
	doc, _ := loadDoc(t)
	checkSchema(t, doc, reflect.TypeFor[envelope](), map[string]any{"$ref": "#/components/schemas/Error"}, false)
}

// checkSchema compares schema with the json tags of typ, reporting each
// difference once.
func checkSchema(t *testing.T, doc map[string]any, typ reflect.Type, schema any, request bool) {
	t.Helper()
	reported := map[string]bool{}
	w := &walker{t: t, doc: doc, request: request, errorf: func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if !reported[msg] {
			reported[msg] = true
			t.Error(msg)
		}
	}}
	w.walk(typ, schema, goName(typ), map[reflect.Type]bool{})
}

type walker struct {
	t       *testing.T
	doc     map[string]any
	request bool
	errorf  func(format string, args ...any)
}

var pkgPath = regexp.MustCompile(`[\w./-]+\.`)

func goName(typ reflect.Type) string { return pkgPath.ReplaceAllString(typ.String(), "") }

var rawMessage = reflect.TypeFor[json.RawMessage]()

// walk compares typ with schema at where (a path such as
// "Page[Link].data[].error").
func (w *walker) walk(typ reflect.Type, schema any, where string, seen map[reflect.Type]bool) {
	s := flatten(w.t, w.doc, schema)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	types := s.types
	switch {
	case typ == rawMessage || typ.Kind() == reflect.Interface || typ.Kind() == reflect.Map:
		return // opaque: any JSON
	case s.alternatives > 1:
		w.errorf("%s: the document has %d alternatives here; only an opaque Go type (json.RawMessage) can hold them", where, s.alternatives)
		return
	case typ.Kind() == reflect.Struct:
		if !types["object"] && len(s.props) == 0 {
			w.errorf("%s: Go struct %s, document %v", where, goName(typ), keys(types))
			return
		}
		if seen[typ] {
			return
		}
		seen = maps(seen, typ)
		tn := goName(typ)
		if typ.Name() == "" {
			tn = where // an anonymous struct: named by where it is
		}
		fields := map[string]reflect.StructField{}
		for f := range reflectFields(typ) {
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				w.errorf("%s: field %s has no json tag", where, f.Name)
				continue
			}
			fields[name] = f
			if w.request && s.required[name] && strings.Contains(opts, "omit") {
				w.errorf("%s.%s: required by the document but tagged %s", tn, name, opts)
			}
		}
		for name := range s.props {
			if _, ok := fields[name]; !ok && allowed[tn+"."+name] == "" {
				w.errorf("%s.%s: in the document, not in the Go type (at %s)", tn, name, where)
			}
		}
		for name, f := range fields {
			ps, ok := s.props[name]
			if !ok {
				if allowed[tn+"."+name] == "" {
					w.errorf("%s.%s: json tag of field %s, not in the document (at %s)", tn, name, f.Name, where)
				}
				continue
			}
			if allowed[tn+"."+name] != "" {
				continue
			}
			fs := flatten(w.t, w.doc, ps)
			if fs.nullable && !nilable(f.Type) {
				w.errorf("%s.%s: nullable in the document; Go field %s is %s, which cannot be nil", tn, name, f.Name, f.Type)
			}
			w.walk(f.Type, ps, where+"."+name, seen)
		}
	case typ.Kind() == reflect.Slice:
		if !types["array"] {
			w.errorf("%s: Go slice, document %v", where, keys(types))
			return
		}
		w.walk(typ.Elem(), s.items, where+"[]", seen)
	default:
		want := map[reflect.Kind]string{reflect.String: "string", reflect.Bool: "boolean",
			reflect.Int: "integer", reflect.Int32: "integer", reflect.Int64: "integer", reflect.Float64: "number"}[typ.Kind()]
		if want == "" || (len(types) > 0 && !types[want]) {
			w.errorf("%s: Go %s, document %v", where, typ, keys(types))
		}
	}
}

// flat is a schema with $ref, allOf and a oneOf of one non-null
// alternative resolved.
type flat struct {
	types        map[string]bool // without "null"
	nullable     bool
	props        map[string]any
	required     map[string]bool
	items        any
	alternatives int // of a oneOf/anyOf that are not null
}

func flatten(t *testing.T, doc map[string]any, schema any) flat {
	t.Helper()
	f := flat{types: map[string]bool{}, props: map[string]any{}, required: map[string]bool{}}
	var add func(s map[string]any)
	add = func(s map[string]any) {
		switch ty := s["type"].(type) {
		case string:
			if ty == "null" {
				f.nullable = true
			} else {
				f.types[ty] = true
			}
		case []any:
			for _, x := range ty {
				if x == "null" {
					f.nullable = true
				} else {
					f.types[str(x)] = true
				}
			}
		}
		for k, v := range asMap(s["properties"]) {
			f.props[k] = v
		}
		req, _ := s["required"].([]any)
		for _, r := range req {
			f.required[str(r)] = true
		}
		if it, ok := s["items"]; ok {
			f.items = it
		}
		for _, sub := range list(s["allOf"]) {
			add(asMap(resolve(t, doc, sub)))
		}
		var alts []map[string]any
		for _, sub := range append(list(s["oneOf"]), list(s["anyOf"])...) {
			a := asMap(resolve(t, doc, sub))
			if a["type"] == "null" {
				f.nullable = true
				continue
			}
			alts = append(alts, a)
		}
		if len(alts) == 1 {
			add(alts[0])
		}
		if len(alts) > 1 {
			f.alternatives = len(alts)
		}
	}
	add(asMap(resolve(t, doc, schema)))
	return f
}

func resolve(t *testing.T, doc map[string]any, v any) any {
	t.Helper()
	for range 10 {
		ref, ok := asMap(v)["$ref"].(string)
		if !ok {
			return v
		}
		rest, ok := strings.CutPrefix(ref, "#/")
		if !ok {
			t.Fatalf("$ref %s is not local", ref)
		}
		var cur any = doc
		for _, part := range strings.Split(rest, "/") {
			cur = asMap(cur)[part]
		}
		if cur == nil {
			t.Fatalf("$ref %s points at nothing", ref)
		}
		v = cur
	}
	t.Fatal("$ref chain too long")
	return nil
}

func reflectFields(typ reflect.Type) func(func(reflect.StructField) bool) {
	return func(yield func(reflect.StructField) bool) {
		for i := range typ.NumField() {
			if !yield(typ.Field(i)) {
				return
			}
		}
	}
}

func nilable(typ reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

func maps(m map[reflect.Type]bool, typ reflect.Type) map[reflect.Type]bool {
	out := map[reflect.Type]bool{typ: true}
	for k := range m {
		out[k] = true
	}
	return out
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func list(v any) []any           { l, _ := v.([]any); return l }
func str(v any) string           { s, _ := v.(string); return s }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
