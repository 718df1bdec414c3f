package http_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	httpapi "github.com/incentives-platform/incentives/adapters/http"
	"github.com/incentives-platform/incentives/schemas"
)

// The OpenAPI document (schemas/openapi.json, served at /openapi.json) is
// kept true by these tests: every route the router has is documented, every
// documented operation is routed, the document is valid OpenAPI 3.1, and
// what it says about authentication is what the router does.

type nopObserver struct{}

func (nopObserver) ObserveRequest(string, string, int, time.Duration) {}

// openAPIRouter builds the API's routes around no real dependency: the handlers the
// tests reach (public endpoints, unauthenticated requests) need none.
func openAPIRouter(t *testing.T) chi.Router {
	t.Helper()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, "# no metrics in this test\n")
	})
	var r chi.Router
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("building the routes panicked (routes() now uses a dependency at build time; give RoutesForTest a fake of it): %v", v)
			}
		}()
		r = httpapi.RoutesForTest(httpapi.Deps{Observer: nopObserver{}, Metrics: metrics, Logger: slog.New(slog.DiscardHandler)})
	}()
	return r
}

// oasDocument is the served OpenAPI document, decoded with numbers as written.
type oasDocument map[string]any

func servedDocument(t *testing.T, h http.Handler) (oasDocument, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json without a token = %d, want 200: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /openapi.json Content-Type = %q, want application/json", ct)
	}
	raw := rec.Body.Bytes()
	doc, err := decodeDocument(raw)
	if err != nil {
		t.Fatalf("/openapi.json is not one JSON object: %v", err)
	}
	return doc, raw
}

func decodeDocument(raw []byte) (oasDocument, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc oasDocument
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return doc, nil
}

var openAPI31 = regexp.MustCompile(`^3\.1\.\d+$`)

func TestOpenAPIDocumentIsServedAndDeclares31(t *testing.T) {
	source, err := decodeDocument(schemas.OpenAPI)
	if err != nil {
		t.Fatalf("schemas/openapi.json is not one JSON object: %v", err)
	}
	served, _ := servedDocument(t, openAPIRouter(t))
	for name, doc := range map[string]oasDocument{"schemas/openapi.json": source, "/openapi.json": served} {
		if v, _ := doc["openapi"].(string); !openAPI31.MatchString(v) {
			t.Errorf("%s declares openapi %q, want 3.1.x", name, v)
		}
	}
}

// oasOperation is a method and a path pattern, as chi and OpenAPI both write it:
// "POST /api/v1/tenants/{tenantId}:suspend".
type oasOperation struct{ method, path string }

func (o oasOperation) String() string { return o.method + " " + o.path }

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// chiRegexp matches the regular expression of a chi parameter, {id:[0-9]+}.
var chiRegexp = regexp.MustCompile(`\{([^{}:]+):[^{}]*\}`)

func routedOperations(t *testing.T, r chi.Router) map[oasOperation]bool {
	t.Helper()
	ops := map[oasOperation]bool{}
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		ops[oasOperation{method, chiRegexp.ReplaceAllString(route, "{$1}")}] = true
		return nil
	})
	if err != nil {
		t.Fatalf("walk the routes: %v", err)
	}
	return ops
}

func documentedOperations(t *testing.T, doc oasDocument) map[oasOperation]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("the document has no paths object")
	}
	ops := map[oasOperation]map[string]any{}
	for path, raw := range paths {
		item, ok := raw.(map[string]any)
		if !ok {
			t.Errorf("path %s: the path item is not an object", path)
			continue
		}
		for _, m := range httpMethods {
			if o, ok := item[m].(map[string]any); ok {
				ops[oasOperation{strings.ToUpper(m), path}] = o
			}
		}
	}
	return ops
}

func sortedOperations[V any](set map[oasOperation]V) []oasOperation {
	out := make([]oasOperation, 0, len(set))
	for o := range set {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].path != out[j].path {
			return out[i].path < out[j].path
		}
		return out[i].method < out[j].method
	})
	return out
}

func TestOpenAPIDocumentsEveryRouteAndOnlyRoutes(t *testing.T) {
	r := openAPIRouter(t)
	doc, _ := servedDocument(t, r)
	routed := routedOperations(t, r)
	documented := documentedOperations(t, doc)
	t.Run("every route is documented", func(t *testing.T) {
		for _, o := range sortedOperations(routed) {
			if documented[o] == nil {
				t.Errorf("route %s is not documented in schemas/openapi.json (add path %q, operation %q)", o, o.path, strings.ToLower(o.method))
			}
		}
	})
	t.Run("every documented operation is routed", func(t *testing.T) {
		for _, o := range sortedOperations(documented) {
			if !routed[o] {
				t.Errorf("schemas/openapi.json documents %s (operationId %v), but the router has no such route", o, documented[o]["operationId"])
			}
		}
	})
}

// The document says which operations need a bearer token (the /api/v1 ones,
// by the top-level security requirement) and which do not (security: []);
// the router must agree, and what it answers without a token (401, or the
// public endpoints' 200) must be as documented.
func TestOpenAPISecurityMatchesTheRouter(t *testing.T) {
	r := openAPIRouter(t)
	doc, raw := servedDocument(t, r)
	routed := routedOperations(t, r)
	answers := newAnswerChecker(t, doc, raw)
	if sec, _ := doc["security"].([]any); len(sec) == 0 {
		t.Error("the document has no top-level security requirement; the /api/v1 operations need bearerAuth")
	}
	documented := documentedOperations(t, doc)
	for _, o := range sortedOperations(documented) {
		op := documented[o]
		sec, overrides := op["security"].([]any)
		public := overrides && len(sec) == 0
		if api := strings.HasPrefix(o.path, "/api/v1/"); api == public {
			t.Errorf("%s: security %v, but /api/v1 operations need the bearer token and no other does", o, op["security"])
		}
		if !routed[o] {
			continue // reported by TestOpenAPIDocumentsEveryRouteAndOnlyRoutes
		}
		path := regexp.MustCompile(`\{[^{}]+\}`).ReplaceAllString(o.path, "0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b")
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(o.method, path, nil))
		switch {
		case public && rec.Code == http.StatusUnauthorized:
			t.Errorf("%s is documented as public, but the router asks for a token", o)
		case public && rec.Code != http.StatusOK:
			t.Errorf("%s without a token = %d, want 200: %s", o, rec.Code, rec.Body)
		case !public && rec.Code != http.StatusUnauthorized:
			t.Errorf("%s without a token = %d, want 401 as documented: %s", o, rec.Code, rec.Body)
		}
		answers.check(o, rec)
	}
}

// answerChecker checks an answer against the response the document gives
// for its operation and status: documented, of a documented media type, and
// (for JSON) valid against the documented schema.
type answerChecker struct {
	t   *testing.T
	doc oasDocument
	c   *jsonschema.Compiler
}

const servedURL = "urn:incentives:openapi"

func newAnswerChecker(t *testing.T, doc oasDocument, raw []byte) *answerChecker {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(servedURL, v); err != nil {
		t.Fatal(err)
	}
	return &answerChecker{t: t, doc: doc, c: c}
}

// pointerToken escapes a JSON pointer token for a URI fragment.
func pointerToken(s string) string {
	return url.PathEscape(strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1"))
}

func (a *answerChecker) check(o oasOperation, rec *httptest.ResponseRecorder) {
	t := a.t
	t.Helper()
	code := strconv.Itoa(rec.Code)
	op, _ := a.doc["paths"].(map[string]any)[o.path].(map[string]any)[strings.ToLower(o.method)].(map[string]any)
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[code]
	if !ok {
		t.Errorf("%s answered %d, which the document does not list", o, rec.Code)
		return
	}
	at := "#/paths/" + pointerToken(o.path) + "/" + strings.ToLower(o.method) + "/responses/" + code
	if m, _ := resp.(map[string]any); m["$ref"] != nil {
		at = m["$ref"].(string)
	}
	content, _ := derefObject(t, a.doc, resp)["content"].(map[string]any)
	mt, _, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil || content[mt] == nil {
		t.Errorf("%s answered %d as %q; the document says %v", o, rec.Code, rec.Header().Get("Content-Type"), slices.Sorted(maps.Keys(content)))
		return
	}
	if mt != "application/json" && mt != "application/problem+json" {
		return
	}
	schema, err := a.c.Compile(servedURL + at + "/content/" + pointerToken(mt) + "/schema")
	if err != nil {
		t.Fatalf("%s: compile the schema of response %d: %v", o, rec.Code, err)
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Errorf("%s answered %d with a body that is not JSON: %v", o, rec.Code, err)
		return
	}
	if err := schema.Validate(body); err != nil {
		t.Errorf("%s answered %d with a body its documented schema refuses: %s\n%v", o, rec.Code, rec.Body, err)
	}
}

// resolvePointer follows a document-local JSON pointer ("#/components/schemas/Tenant").
func resolvePointer(doc oasDocument, ref string) (any, error) {
	if !strings.HasPrefix(ref, "#") {
		return nil, fmt.Errorf("%q is not a reference within the document", ref)
	}
	frag, err := url.PathUnescape(ref[1:])
	if err != nil {
		return nil, fmt.Errorf("%q: %v", ref, err)
	}
	var v any = map[string]any(doc)
	if frag == "" {
		return v, nil
	}
	if !strings.HasPrefix(frag, "/") {
		return nil, fmt.Errorf("%q: only JSON pointers are used here", ref)
	}
	for _, tok := range strings.Split(frag[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("%q: no %q", ref, tok)
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("%q: no index %q", ref, tok)
			}
			v = c[i]
		default:
			return nil, fmt.Errorf("%q: %q is inside a scalar", ref, tok)
		}
	}
	return v, nil
}

// derefObject follows $ref until it reaches an object that is not one.
func derefObject(t *testing.T, doc oasDocument, v any) map[string]any {
	t.Helper()
	for range 10 {
		m, _ := v.(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		next, err := resolvePointer(doc, ref)
		if err != nil {
			t.Fatal(err)
		}
		v = next
	}
	t.Fatalf("a chain of more than 10 references at %v", v)
	return nil
}

// walkRefs calls fn for every $ref under v with its location.
func walkRefs(v any, at string, fn func(at, ref string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if s, ok := child.(string); ok && k == "$ref" {
				fn(at, s)
				continue
			}
			walkRefs(child, at+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"), fn)
		}
	case []any:
		for i, child := range v {
			walkRefs(child, at+"/"+strconv.Itoa(i), fn)
		}
	}
}

// The served document stands alone: every reference resolves within it.
// The source file may also name the sibling schema files the server bundles.
func TestOpenAPIReferencesResolve(t *testing.T) {
	served, _ := servedDocument(t, openAPIRouter(t))
	walkRefs(map[string]any(served), "#", func(at, ref string) {
		if _, err := resolvePointer(served, ref); err != nil {
			t.Errorf("/openapi.json at %s: $ref does not resolve: %v", at, err)
		}
	})
	source, err := decodeDocument(schemas.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	walkRefs(map[string]any(source), "#", func(at, ref string) {
		if !strings.HasPrefix(ref, "#") {
			if _, err := os.Stat(filepath.Join("..", "..", "schemas", ref)); err != nil {
				t.Errorf("schemas/openapi.json at %s: $ref %q names no file in schemas/", at, ref)
			}
			return
		}
		if _, err := resolvePointer(source, ref); err != nil {
			t.Errorf("schemas/openapi.json at %s: $ref does not resolve: %v", at, err)
		}
	})
}

var pathParam = regexp.MustCompile(`\{([^{}]+)\}`)

// What a validator of the OpenAPI schema cannot see: path parameters match
// the path's template and are UUIDs, operation ids are unique, and every
// error is problem+json of the Problem schema.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	doc, _ := servedDocument(t, openAPIRouter(t))
	problem := derefObject(t, doc, map[string]any{"$ref": "#/components/schemas/Problem"})
	if props, _ := problem["properties"].(map[string]any); props["errors"] == nil {
		t.Error("the Problem schema does not list the errors array")
	}
	ids := map[string]oasOperation{}
	documented := documentedOperations(t, doc)
	for _, o := range sortedOperations(documented) {
		op := documented[o]
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", o)
		} else if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s share operationId %q", prev, o, id)
		}
		ids[id] = o

		var declared []string
		item, _ := doc["paths"].(map[string]any)[o.path].(map[string]any)
		params, _ := op["parameters"].([]any)
		params = append(params, func() []any { p, _ := item["parameters"].([]any); return p }()...)
		for _, raw := range params {
			p := derefObject(t, doc, raw)
			if p["in"] != "path" {
				continue
			}
			name, _ := p["name"].(string)
			declared = append(declared, name)
			if p["required"] != true {
				t.Errorf("%s: path parameter %s is not required", o, name)
			}
			// Ids are UUIDs, except a user's: the tenant's own opaque
			// string (DESIGN.md §11), URL-escaped in the path.
			switch s := derefObject(t, doc, p["schema"]); {
			case name == "userId":
				if s["type"] != "string" || s["maxLength"] != json.Number("128") {
					t.Errorf("%s: path parameter userId is not a string of at most 128 bytes", o)
				}
			case s["format"] != "uuid":
				t.Errorf("%s: path parameter %s is not a uuid", o, name)
			}
		}
		var inPath []string
		for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
			inPath = append(inPath, m[1])
		}
		slices.Sort(declared)
		slices.Sort(inPath)
		if !slices.Equal(declared, inPath) {
			t.Errorf("%s: path parameters %v, but the path has %v", o, declared, inPath)
		}

		responses, _ := op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s has no responses", o)
		}
		for code, raw := range responses {
			resp := derefObject(t, doc, raw)
			content, _ := resp["content"].(map[string]any)
			// /readyz answers 503 with its readiness report, not a problem.
			if code >= "400" && o.path != "/readyz" {
				media, _ := content["application/problem+json"].(map[string]any)
				schema, _ := media["schema"].(map[string]any)
				if ref, _ := schema["$ref"].(string); ref != "#/components/schemas/Problem" || len(content) != 1 {
					t.Errorf("%s: response %s is not application/problem+json of #/components/schemas/Problem", o, code)
				}
			}
		}
	}
}

// oasSchemaBase checks an OpenAPI 3.1 document and every Schema Object in it
// (against the OpenAPI base dialect of JSON Schema 2020-12).
const oasSchemaBase = "https://spec.openapis.org/oas/3.1/schema-base/2022-10-07"

func TestOpenAPIDocumentIsValidOpenAPI31(t *testing.T) {
	_, raw := servedDocument(t, openAPIRouter(t))
	c := jsonschema.NewCompiler()
	files, err := filepath.Glob(filepath.Join("testdata", "oas-3.1", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no meta-schemas in testdata/oas-3.1: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	meta, err := c.Compile(oasSchemaBase)
	if err != nil {
		t.Fatalf("compile the OpenAPI 3.1 meta-schema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.Validate(doc); err != nil {
		t.Errorf("/openapi.json is not a valid OpenAPI 3.1 document:\n%v", err)
	}
}

// The request schemas mean what the platform does: a campaign whose rule is
// good passes CampaignCreate (through the bundled rule schema) and one the
// platform refuses does not.
func TestOpenAPIRequestSchemasAcceptWhatThePlatformAccepts(t *testing.T) {
	_, raw := servedDocument(t, openAPIRouter(t))
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	const base = "urn:incentives:openapi"
	c := jsonschema.NewCompiler()
	if err := c.AddResource(base, doc); err != nil {
		t.Fatal(err)
	}
	compile := func(name string) *jsonschema.Schema {
		s, err := c.Compile(base + "#/components/schemas/" + name)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		return s
	}
	cases := []struct {
		schema, body string
		ok           bool
	}{
		{"TenantCreate", `{"name":"Acme"}`, true},
		{"TenantCreate", `{"name":42}`, false},
		{"TenantCreate", `{"name":"Acme","colour":"red"}`, false},
		{"TenantSuspend", `{"reason":"trying it out"}`, true},
		{"LimitCaps", `{"maxPerDay":10,"maxPerWindow":null}`, true},
		{"LimitCaps", `{"maxPerDay":-1}`, false},
		{"CampaignCreate", `{"tenantId":"30567944-3eb7-4e5f-a0b3-e7c867c70a47","name":"Cashback","type":"SIMPLE",
			"rule":{"action":"PURCHASE","condition":"event.payload.amount >= 100","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}}`, true},
		{"CampaignCreate", `{"name":"Quest","type":"QUEST","startAt":"2026-12-01T00:00:00Z","cohortId":null,
			"rule":{"steps":[{"action":"LOGIN","count":3},{"action":"PURCHASE"}],"ordered":true,"windowDays":7,"reward":{"type":"POINTS","currency":"POINTS","amount":"100"}}}`, true},
		{"CampaignCreate", `{"name":"Cashback","type":"SIMPLE","rule":{"action":"PURCHASE","reward":{"type":"CASHBACK","currency":"INR","amount":50}}}`, false},
		{"CampaignCreate", `{"name":"Cashback","type":"SIMPLE","rule":{"action":"purchase","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}}`, false},
		{"CampaignCreate", `{"name":"Cashback","type":"FANCY","rule":{"action":"PURCHASE","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}}`, false},
		{"CampaignUpdate", `{"tenantId":"30567944-3eb7-4e5f-a0b3-e7c867c70a47","name":"x","type":"SIMPLE","rule":{"action":"A","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}}`, false},
		{"CohortCreate", `{"name":"VIPs","kind":"STATIC","userIds":["alice","bob"]}`, true},
		{"CohortCreate", `{"name":"Buyers","kind":"DYNAMIC","rule":"user.counts['PURCHASE'] >= 3"}`, true},
		{"CohortCreate", `{"name":"VIPs","kind":"STATIC"}`, false},
		{"CohortCreate", `{"name":"Buyers","kind":"DYNAMIC","rule":"true","userIds":["alice"]}`, false},
	}
	for _, tc := range cases {
		body, err := jsonschema.UnmarshalJSON(strings.NewReader(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		err = compile(tc.schema).Validate(body)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s refuses %s: %v", tc.schema, tc.body, err)
		case !tc.ok && err == nil:
			t.Errorf("%s accepts %s", tc.schema, tc.body)
		}
	}
}
