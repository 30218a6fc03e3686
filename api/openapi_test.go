package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keyledger/keyledger/api"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

const openAPIURL = "file:///keyledger/openapi.json"

// openAPIDoc is the parsed document and a JSON Schema compiler that has
// the whole document as one resource, so a $ref to
// #/components/schemas/... resolves wherever a schema is compiled from.
type openAPIDoc struct {
	raw      map[string]any
	compiler *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
	seen    map[string]bool // "METHOD /path status" checked against the server
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI))
	if err != nil {
		t.Fatalf("api/openapi.json is not JSON: %v", err)
	}
	raw, ok := doc.(map[string]any)
	if !ok {
		t.Fatal("api/openapi.json is not a JSON object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(openAPIURL, doc); err != nil {
		t.Fatalf("adding the document as a schema resource: %v", err)
	}
	return &openAPIDoc{raw: raw, compiler: c, schemas: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
}

// escapePointer escapes one JSON Pointer token.
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// pointer joins tokens into a JSON Pointer fragment ("#/a/b").
func pointer(tokens ...string) string {
	var b strings.Builder
	b.WriteString("#")
	for _, tok := range tokens {
		b.WriteString("/" + escapePointer(tok))
	}
	return b.String()
}

// at returns the value at a JSON Pointer fragment ("#/a/b").
func (d *openAPIDoc) at(ptr string) (any, bool) {
	var v any = d.raw
	rest, ok := strings.CutPrefix(ptr, "#")
	if !ok {
		return nil, false
	}
	if rest == "" {
		return v, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return v, true
}

// follow resolves an object that may be a Reference Object, returning the
// object and its location.
func (d *openAPIDoc) follow(t *testing.T, ptr string) (map[string]any, string) {
	t.Helper()
	for range 10 {
		v, ok := d.at(ptr)
		if !ok {
			t.Fatalf("openapi.json: nothing at %s", ptr)
		}
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("openapi.json: %s is not an object", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr
		}
		ptr = ref
	}
	t.Fatalf("openapi.json: $ref loop at %s", ptr)
	return nil, ""
}

func (d *openAPIDoc) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s
	}
	s, err := d.compiler.Compile(openAPIURL + ptr)
	if err != nil {
		t.Fatalf("openapi.json: compiling the schema at %s: %v", ptr, err)
	}
	d.schemas[ptr] = s
	return s
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations returns "METHOD /path" for every operation in the document.
func (d *openAPIDoc) operations() []string {
	var ops []string
	paths, _ := d.raw["paths"].(map[string]any)
	for p, item := range paths {
		m, _ := item.(map[string]any)
		for _, method := range httpMethods {
			if _, ok := m[method]; ok {
				ops = append(ops, strings.ToUpper(method)+" "+p)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

// responseFor returns the location of the Response Object documented for
// method docPath status: 405 for a method the path lacks is the shared
// response documented in x-keyledger-method-not-allowed.
func (d *openAPIDoc) responseFor(t *testing.T, method, docPath string, status int) (string, bool) {
	t.Helper()
	if _, ok := d.at(pointer("paths", docPath)); !ok {
		t.Errorf("%s %s: openapi.json has no path %s", method, docPath, docPath)
		return "", false
	}
	op := pointer("paths", docPath, strings.ToLower(method))
	if _, ok := d.at(op); !ok {
		if status == http.StatusMethodNotAllowed {
			return "#/x-keyledger-method-not-allowed", true
		}
		t.Errorf("%s %s: not in openapi.json, yet answered %d", method, docPath, status)
		return "", false
	}
	ptr := op + pointer("responses", strconv.Itoa(status))[1:]
	if _, ok := d.at(ptr); !ok {
		t.Errorf("%s %s: status %d is not documented in openapi.json", method, docPath, status)
		return "", false
	}
	return ptr, true
}

// check validates a real response to method docPath against the document:
// its status is documented, its required headers are present and match
// their schemas, its Content-Type is a documented media type and a JSON
// body validates against that media type's schema.
func (d *openAPIDoc) check(t *testing.T, method, docPath string, r apptest.Response) {
	t.Helper()
	ptr, ok := d.responseFor(t, method, docPath, r.Status)
	if !ok {
		return
	}
	d.mu.Lock()
	d.seen[fmt.Sprintf("%s %s %d", method, docPath, r.Status)] = true
	d.mu.Unlock()
	d.checkResponse(t, fmt.Sprintf("%s %s %d", method, docPath, r.Status), ptr, r)
}

func (d *openAPIDoc) checkResponse(t *testing.T, what, ptr string, r apptest.Response) {
	t.Helper()
	resp, loc := d.follow(t, ptr)
	headers, _ := resp["headers"].(map[string]any)
	for name := range headers {
		h, hloc := d.follow(t, loc+pointer("headers", name)[1:])
		value := r.Header.Get(name)
		if value == "" {
			if req, _ := h["required"].(bool); req {
				t.Errorf("%s: required header %s is missing", what, name)
			}
			continue
		}
		if _, ok := h["schema"]; !ok {
			continue
		}
		var v any = value
		if typ, _ := h["schema"].(map[string]any)["type"].(string); typ == "integer" {
			n, err := strconv.Atoi(value)
			if err != nil {
				t.Errorf("%s: header %s: %q is not an integer", what, name, value)
				continue
			}
			v = json.Number(strconv.Itoa(n))
		}
		if err := d.schema(t, hloc+"/schema").Validate(v); err != nil {
			t.Errorf("%s: header %s: %q does not match openapi.json:\n%v", what, name, value, err)
		}
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.Body) != 0 {
			t.Errorf("%s: openapi.json documents no body, got %q", what, r.Body)
		}
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Errorf("%s: bad Content-Type %q", what, r.Header.Get("Content-Type"))
		return
	}
	if _, ok := content[mt]; !ok {
		t.Errorf("%s: Content-Type %s is not documented (want one of %v)", what, mt, apptest.SortedKeys(content))
		return
	}
	if mt != "application/json" {
		return
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		t.Errorf("%s: body is not JSON: %v\n%s", what, err, r.Body)
		return
	}
	if err := d.schema(t, loc+pointer("content", mt, "schema")[1:]).Validate(body); err != nil {
		t.Errorf("%s: body does not match openapi.json:\n%s\n%v", what, r.Body, err)
	}
}

// routePattern matches the patterns handlers.go registers on its mux.
var routePattern = regexp.MustCompile(`a\.mux\.Handle(?:Func)?\("([^"]+)"`)

// codeRoutes returns the patterns handlers.go registers, read from its
// source so that a new route cannot be missed.
func codeRoutes(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "handlers", "handlers.go"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, m := range routePattern.FindAllSubmatch(src, -1) {
		routes = append(routes, string(m[1]))
	}
	// The table the parity check is anchored to: if handlers.go changes
	// how it registers routes, the regexp above must keep finding them.
	for _, want := range []string{"GET /healthz", "GET /readyz", "GET /.well-known/jwks.json", "GET /openapi.json",
		"POST /users", "POST /sessions", "/validate", "POST /api-keys", "GET /api-keys", "GET /api-keys/{key}",
		"DELETE /api-keys/{key}", "POST /api-keys/{key}/regenerate", "GET /admin/keys", "DELETE /admin/keys/{key}",
		"POST /admin/users/{id}/disable", "POST /admin/users/{id}/revoke-keys", "GET /metrics"} {
		if !slices.Contains(routes, want) {
			t.Errorf("handlers.go: route %q not found by %v (found %q)", want, routePattern, routes)
		}
	}
	return routes
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// normalizeRoute makes "METHOD /path/{x}" comparable whatever the
// wildcards' names.
func normalizeRoute(s string) string { return wildcard.ReplaceAllString(s, "{}") }

func TestOpenAPI_RoutesMatchCode(t *testing.T) {
	t.Parallel()
	d := loadOpenAPI(t)
	docOps := map[string]bool{}
	for _, op := range d.operations() {
		docOps[normalizeRoute(op)] = true
	}
	codeOps := map[string]bool{}
	for _, pattern := range codeRoutes(t) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok { // any method: the document must list some, all of them real
			path = pattern
			item, found := d.at(pointer("paths", path))
			if !found {
				t.Errorf("route %q (any method) is not in openapi.json", pattern)
				continue
			}
			n := 0
			for _, m := range httpMethods {
				if _, ok := item.(map[string]any)[m]; ok {
					codeOps[normalizeRoute(strings.ToUpper(m)+" "+path)] = true
					n++
				}
			}
			if n == 0 {
				t.Errorf("route %q (any method): openapi.json documents no operation", pattern)
			}
			continue
		}
		codeOps[normalizeRoute(method+" "+path)] = true
	}
	for op := range codeOps {
		if !docOps[op] {
			t.Errorf("route %s is registered in handlers.go but not in openapi.json", op)
		}
	}
	for op := range docOps {
		if !codeOps[op] {
			t.Errorf("openapi.json documents %s, which handlers.go does not register", op)
		}
	}
}

// TestOpenAPI_Document checks the document itself: OpenAPI 3.1, every
// local $ref resolves, every component schema compiles, response objects
// refuse undocumented fields, path parameters are declared, operation ids
// are unique.
func TestOpenAPI_Document(t *testing.T) {
	t.Parallel()
	d := loadOpenAPI(t)
	if v, _ := d.raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi is %q, want 3.1.x", v)
	}
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, ok := d.at(ref); !ok {
					t.Errorf("%s: $ref %s does not resolve", ptr, ref)
				}
			}
			for k, e := range v {
				walk(ptr+"/"+escapePointer(k), e)
			}
		case []any:
			for i, e := range v {
				walk(ptr+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("#", d.raw)

	schemas, _ := d.at("#/components/schemas")
	for name, s := range schemas.(map[string]any) {
		d.schema(t, pointer("components", "schemas", name))
		m := s.(map[string]any)
		// Metadata is the caller's own free-form object, returned as given.
		if m["type"] == "object" && m["additionalProperties"] != false && name != "Metadata" {
			t.Errorf("components/schemas/%s: an object without additionalProperties: false", name)
		}
	}

	ids := map[string]string{}
	for _, op := range d.operations() {
		method, path, _ := strings.Cut(op, " ")
		o, _ := d.follow(t, pointer("paths", path, strings.ToLower(method)))
		id, _ := o["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", op)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s: operationId %s also used by %s", op, id, other)
		}
		ids[id] = op
		if _, ok := o["responses"].(map[string]any); !ok {
			t.Errorf("%s: no responses", op)
		}
		// Every {name} in the path is a declared path parameter.
		declared := map[string]bool{}
		item, _ := d.at(pointer("paths", path))
		for _, params := range []any{item.(map[string]any)["parameters"], o["parameters"]} {
			list, _ := params.([]any)
			for i := range list {
				p := list[i].(map[string]any)
				if ref, ok := p["$ref"].(string); ok {
					p, _ = d.follow(t, ref)
				}
				if p["in"] == "path" {
					declared[p["name"].(string)] = true
				}
			}
		}
		for _, m := range wildcard.FindAllString(path, -1) {
			if !declared[strings.Trim(m, "{}")] {
				t.Errorf("%s: path parameter %s is not declared", op, m)
			}
		}
	}
}

func TestOpenAPI_Server(t *testing.T) {
	t.Parallel()
	// /metrics on the API's listener, as the document describes it.
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.MetricsAddr = app.MetricsOnAPI
		// ?wait=nodes: a node announced by the test stays live throughout,
		// and waits for it end soon.
		c.Fleet = app.FleetConfig{Liveness: time.Hour, WaitTimeout: 100 * time.Millisecond}
	})
	defer ts.Stop(t)
	d := loadOpenAPI(t)

	t.Run("Served", func(t *testing.T) {
		r := ts.Do(t, "GET", "/openapi.json", "")
		apptest.WantStatus(t, r, http.StatusOK)
		if !bytes.Equal(r.Body, api.OpenAPI) {
			t.Errorf("GET /openapi.json: %d bytes, not the %d embedded", len(r.Body), len(api.OpenAPI))
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET /openapi.json: Content-Type %q, want application/json", ct)
		}
		var doc struct {
			OpenAPI string `json:"openapi"`
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.1.") {
			t.Errorf("GET /openapi.json: got openapi %q (%v), want 3.1.x", doc.OpenAPI, err)
		}
		d.check(t, "GET", "/openapi.json", r)
	})

	// Every documented operation reaches a handler: no JSON 404 "no such
	// route", no 405.
	t.Run("DocumentedRoutesExist", func(t *testing.T) {
		fill := strings.NewReplacer("{api_key}", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "{id}", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C",
			"{team}", "tm_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "{user}", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "{sa}", "sa_01JH6Z3Q8X4N6V2R9T5M7K3B1C")
		for _, op := range d.operations() {
			method, path, _ := strings.Cut(op, " ")
			r := ts.Do(t, method, fill.Replace(path), "")
			if r.Status == http.StatusMethodNotAllowed || r.Status == http.StatusNotFound && bytes.Contains(r.Body, []byte("no such route")) {
				t.Errorf("%s: the server has no such route: %d %s", op, r.Status, r.Body)
			}
			d.check(t, method, path, r)
		}
	})

	t.Run("Responses", func(t *testing.T) { walkThrough(t, ts, d) })
	t.Run("SignUp", func(t *testing.T) { signUpWalkThrough(t, d) })
	t.Run("OIDC", func(t *testing.T) { oidcWalkThrough(t, d) })
	t.Run("WaitNodes", func(t *testing.T) { waitNodesWalkThrough(t, ts, d) })
	t.Run("Teams", func(t *testing.T) { teamsWalkThrough(t, d) })

	// Which documented statuses the walk-through did not produce.
	var missed []string
	for _, op := range d.operations() {
		method, path, _ := strings.Cut(op, " ")
		o, _ := d.follow(t, pointer("paths", path, strings.ToLower(method)))
		for status := range o["responses"].(map[string]any) {
			if key := op + " " + status; !d.seen[key] {
				missed = append(missed, key)
				if status[0] == '2' {
					t.Errorf("%s: the documented success status was never checked against the server", key)
				}
			}
		}
	}
	sort.Strings(missed)
	t.Logf("documented responses not produced by this test (%d): %s", len(missed), strings.Join(missed, "; "))
}

// walkThrough drives the README's walk-through, the admin routes and the
// error cases, checking every response against the document.
func walkThrough(t *testing.T, ts *apptest.Server, d *openAPIDoc) {
	do := func(method, docPath, path, body string, headers ...string) apptest.Response {
		t.Helper()
		r := ts.Do(t, method, path, body, headers...)
		d.check(t, method, docPath, r)
		return r
	}
	want := func(r apptest.Response, status int) apptest.Response {
		t.Helper()
		apptest.WantStatus(t, r, status)
		return r
	}

	for _, p := range []string{"/healthz", "/readyz", "/.well-known/jwks.json", "/metrics", "/openapi.json"} {
		want(do("GET", p, p, ""), http.StatusOK)
	}

	// Users and sessions.
	creds := `{"email":"alice@example.com","password":"` + apptest.Password + `"}`
	alice := want(do("POST", "/users", "/users", creds), http.StatusCreated).JSON(t)["id"].(string)
	want(do("POST", "/users", "/users", creds), http.StatusConflict)
	want(do("POST", "/users", "/users", `{"email":`), http.StatusBadRequest)
	want(do("POST", "/users", "/users", `{"email":"b@example.com","password":"`+apptest.Password+`","admin":true}`), http.StatusBadRequest)
	want(do("POST", "/users", "/users", `{"email":"b@example.com","password":"short"}`), http.StatusBadRequest)
	want(do("POST", "/users", "/users", creds, "Content-Type", "text/plain"), http.StatusBadRequest)
	want(do("POST", "/users", "/users", `{"email":"`+strings.Repeat("a", 70<<10)+`"}`), http.StatusRequestEntityTooLarge)
	want(do("PUT", "/users", "/users", creds), http.StatusMethodNotAllowed)
	// Headers past the server's cap are refused before any route runs.
	want(do("POST", "/users", "/users", creds, "X-Padding", strings.Repeat("a", 32<<10)), http.StatusRequestHeaderFieldsTooLarge)
	token := want(do("POST", "/sessions", "/sessions", creds), http.StatusOK).JSON(t)["token"].(string)
	want(do("POST", "/sessions", "/sessions", `{"email":"alice@example.com","password":"wrong wrong wrong wrong"}`), http.StatusUnauthorized)
	want(do("DELETE", "/sessions", "/sessions", ""), http.StatusMethodNotAllowed)
	auth := apptest.Bearer(token)

	// Keys.
	want(do("POST", "/api-keys", "/api-keys", ""), http.StatusUnauthorized)
	want(do("POST", "/api-keys", "/api-keys", "", "Authorization", "Bearer not.a.token"), http.StatusUnauthorized)
	want(do("POST", "/api-keys", "/api-keys", `{"expires_at":"tomorrow"}`, auth...), http.StatusBadRequest)
	want(do("POST", "/api-keys", "/api-keys", `{"expires_at":"2001-01-01T00:00:00Z"}`, auth...), http.StatusBadRequest)
	k1 := want(do("POST", "/api-keys", "/api-keys", `{"name":"ci","expires_at":"2099-01-02T15:04:05Z"}`, auth...), http.StatusCreated).JSON(t)
	k2 := want(do("POST", "/api-keys", "/api-keys", "", auth...), http.StatusCreated).JSON(t)
	key1, secret1 := k1["api_key"].(string), k1["secret"].(string)
	key2 := k2["api_key"].(string)
	page := want(do("GET", "/api-keys", "/api-keys?limit=1", "", auth...), http.StatusOK).JSON(t)
	cursor, _ := page["next_cursor"].(string)
	if cursor == "" {
		t.Fatalf("GET /api-keys?limit=1 of 2 keys: no next_cursor")
	}
	want(do("GET", "/api-keys", "/api-keys?limit=1&cursor="+cursor, "", auth...), http.StatusOK)
	want(do("GET", "/api-keys", "/api-keys", "", auth...), http.StatusOK)
	want(do("GET", "/api-keys", "/api-keys?limit=0", "", auth...), http.StatusBadRequest)
	want(do("GET", "/api-keys", "/api-keys?cursor=bogus", "", auth...), http.StatusBadRequest)
	want(do("GET", "/api-keys", "/api-keys", ""), http.StatusUnauthorized)
	want(do("GET", "/api-keys/{api_key}", "/api-keys/"+key1, "", auth...), http.StatusOK)
	want(do("GET", "/api-keys/{api_key}", "/api-keys/ak_nope", "", auth...), http.StatusNotFound)
	want(do("GET", "/api-keys/{api_key}", "/api-keys/"+key1, ""), http.StatusUnauthorized)
	want(do("GET", "/api-keys/{api_key}/usage", "/api-keys/"+key1+"/usage?bucket=1d", "", auth...), http.StatusOK)
	want(do("GET", "/api-keys/{api_key}/usage", "/api-keys/"+key1+"/usage?bucket=5m", "", auth...), http.StatusBadRequest)
	want(do("GET", "/api-keys/{api_key}/usage", "/api-keys/ak_nope/usage", "", auth...), http.StatusNotFound)
	want(do("GET", "/api-keys/{api_key}/usage", "/api-keys/"+key1+"/usage", ""), http.StatusUnauthorized)
	want(do("PUT", "/api-keys/{api_key}", "/api-keys/"+key1, "{}", auth...), http.StatusMethodNotAllowed)
	want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/ak_nope/regenerate", "", auth...), http.StatusNotFound)
	want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+key1+"/regenerate", ""), http.StatusUnauthorized)
	secret1 = want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+key1+"/regenerate", "", auth...), http.StatusOK).JSON(t)["secret"].(string)
	want(do("GET", "/api-keys/{api_key}", "/api-keys/"+key1, "", auth...), http.StatusOK)

	// Policies: scopes and metadata, edits, pausing, a grace period.
	scoped := want(do("POST", "/api-keys", "/api-keys", `{"name":"scoped","scopes":["orders:*"],"metadata":{"plan":"pro"}}`, auth...),
		http.StatusCreated).JSON(t)
	scopedKey, scopedSecret := scoped["api_key"].(string), scoped["secret"].(string)
	scopedCreds := []string{"X-Api-Key", apptest.Base64(scopedKey), "X-Api-Secret", apptest.Base64(scopedSecret)}
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+scopedKey, `{"scopes":["orders:read"],"expires_at":null}`,
		append(slices.Clone(auth), "If-Match", `"1"`)...), http.StatusOK)
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+scopedKey, `{"name":"x"}`, append(slices.Clone(auth), "If-Match", `"1"`)...),
		http.StatusPreconditionFailed)
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+scopedKey, `{"status":"x"}`, auth...), http.StatusBadRequest)
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/ak_nope", `{"name":"x"}`, auth...), http.StatusNotFound)
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+scopedKey, `{"name":"x"}`), http.StatusUnauthorized)
	for _, m := range []string{"GET", "POST"} {
		want(do(m, "/validate", "/validate?scope=orders:read", "", scopedCreds...), http.StatusOK)
		want(do(m, "/validate", "/validate?scope=orders:write", "", scopedCreds...), http.StatusForbidden)
		want(do(m, "/validate", "/validate?scope=a%20b", "", scopedCreds...), http.StatusBadRequest)
	}
	for _, op := range []string{"disable", "enable"} {
		path := "/api-keys/{api_key}/" + op
		want(do("POST", path, "/api-keys/"+scopedKey+"/"+op, `{"reason":"walk"}`, auth...), http.StatusNoContent)
		want(do("POST", path, "/api-keys/"+scopedKey+"/"+op, `{"why":"walk"}`, auth...), http.StatusBadRequest)
		want(do("POST", path, "/api-keys/ak_nope/"+op, "", auth...), http.StatusNotFound)
		want(do("POST", path, "/api-keys/"+scopedKey+"/"+op, ""), http.StatusUnauthorized)
	}
	want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+scopedKey+"/regenerate", `{"grace_period":"1h"}`, auth...), http.StatusOK)
	want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+scopedKey+"/regenerate", `{"grace_period":"200h"}`, auth...), http.StatusBadRequest)
	want(do("GET", "/api-keys/{api_key}", "/api-keys/"+scopedKey, "", auth...), http.StatusOK)
	want(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+scopedKey, "", auth...), http.StatusNoContent)
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+scopedKey, `{"name":"x"}`, auth...), http.StatusConflict)
	want(do("POST", "/api-keys/{api_key}/disable", "/api-keys/"+scopedKey+"/disable", "", auth...), http.StatusConflict)
	want(do("POST", "/api-keys/{api_key}/enable", "/api-keys/"+scopedKey+"/enable", "", auth...), http.StatusConflict)

	// Limits: set on create, changed and removed by PATCH, credits topped
	// up; a key without credits is 409, bad values 400.
	limited := want(do("POST", "/api-keys", "/api-keys",
		`{"name":"metered","rate_limit":{"limit":5,"window":"1m"},"credits":{"remaining":100,"refill":{"amount":100,"interval":"24h"}}}`, auth...),
		http.StatusCreated).JSON(t)["api_key"].(string)
	want(do("POST", "/api-keys", "/api-keys", `{"rate_limit":{"limit":0,"window":"1m"}}`, auth...), http.StatusBadRequest)
	want(do("POST", "/api-keys", "/api-keys", `{"credits":{"remaining":1,"refill":{"amount":1,"interval":"1s"}}}`, auth...), http.StatusBadRequest)
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+limited, `{"rate_limit":{"limit":10,"window":"1h"},"credits":null}`, auth...), http.StatusOK)
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+limited, `{"rate_limit":{"limit":10,"window":"2d"}}`, auth...), http.StatusBadRequest)
	want(do("POST", "/api-keys/{api_key}/credits", "/api-keys/"+limited+"/credits", `{"add":5}`, auth...), http.StatusConflict)
	want(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+limited, `{"credits":{"remaining":10}}`, auth...), http.StatusOK)
	want(do("POST", "/api-keys/{api_key}/credits", "/api-keys/"+limited+"/credits", `{"add":5}`, auth...), http.StatusOK)
	want(do("POST", "/api-keys/{api_key}/credits", "/api-keys/"+limited+"/credits", `{"add":0}`, auth...), http.StatusBadRequest)
	want(do("POST", "/api-keys/{api_key}/credits", "/api-keys/ak_nope/credits", `{"add":1}`, auth...), http.StatusNotFound)
	want(do("POST", "/api-keys/{api_key}/credits", "/api-keys/"+limited+"/credits", `{"add":1}`), http.StatusUnauthorized)
	want(do("GET", "/api-keys/{api_key}", "/api-keys/"+limited, "", auth...), http.StatusOK)

	// Validation, both styles and every method documented.
	for _, m := range []string{"GET", "POST"} {
		want(do(m, "/validate", "/validate", "", "X-Api-Key", apptest.Base64(key1), "X-Api-Secret", apptest.Base64(secret1)), http.StatusOK)
		want(do(m, "/validate", "/validate", "", "Authorization", "ApiKey "+apptest.Base64(key1+":"+secret1)), http.StatusOK)
		want(do(m, "/validate", "/validate", "", "X-Api-Key", apptest.Base64(key1), "X-Api-Secret", apptest.Base64("sk_wrong")), http.StatusUnauthorized)
		want(do(m, "/validate", "/validate", ""), http.StatusUnauthorized)
	}

	// Revocation.
	want(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+key1, "", auth...), http.StatusNoContent)
	want(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+key1, "", auth...), http.StatusNoContent)
	want(do("DELETE", "/api-keys/{api_key}", "/api-keys/ak_nope", "", auth...), http.StatusNotFound)
	want(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+key1, ""), http.StatusUnauthorized)
	want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+key1+"/regenerate", "", auth...), http.StatusConflict)
	want(do("GET", "/api-keys/{api_key}", "/api-keys/"+key1, "", auth...), http.StatusOK)
	want(do("GET", "/validate", "/validate", "", "X-Api-Key", apptest.Base64(key1), "X-Api-Secret", apptest.Base64(secret1)), http.StatusUnauthorized)

	// Idempotency-Key: a retry is answered from the record, another
	// request with the same key is 422, a malformed key is 400.
	idem := func(key string) []string { return append(slices.Clone(auth), "Idempotency-Key", key) }
	first := want(do("POST", "/api-keys", "/api-keys", `{"name":"idem"}`, idem("walk-create")...), http.StatusCreated)
	again := want(do("POST", "/api-keys", "/api-keys", `{"name":"idem"}`, idem("walk-create")...), http.StatusCreated)
	if !bytes.Equal(again.Body, first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("POST /api-keys retried with its Idempotency-Key: got %s (replayed %q), want %s replayed",
			again.Body, again.Header.Get("Idempotent-Replayed"), first.Body)
	}
	want(do("POST", "/api-keys", "/api-keys", `{"name":"other"}`, idem("walk-create")...), http.StatusUnprocessableEntity)
	want(do("POST", "/api-keys", "/api-keys", "", idem("a\tb")...), http.StatusBadRequest)
	key3 := first.JSON(t)["api_key"].(string)
	for range 2 {
		want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+key3+"/regenerate", "", idem("walk-regenerate")...), http.StatusOK)
	}
	want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+key3+"/regenerate", "", idem("walk-create")...), http.StatusUnprocessableEntity)
	want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+key3+"/regenerate", "", idem(strings.Repeat("k", 256))...), http.StatusBadRequest)
	want(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+key3+"/regenerate", `{"x":"`+strings.Repeat("x", 70<<10)+`"}`, idem("walk-big")...), http.StatusRequestEntityTooLarge)
	for range 2 {
		want(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+key3, "", idem("walk-revoke")...), http.StatusNoContent)
	}
	want(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+key3, "", idem("walk-create")...), http.StatusUnprocessableEntity)
	want(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+key3, "", idem("clé")...), http.StatusBadRequest)
	want(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+key3, `{"x":"`+strings.Repeat("x", 70<<10)+`"}`, idem("walk-big")...), http.StatusRequestEntityTooLarge)
	erin := `{"email":"erin@example.com","password":"` + apptest.Password + `"}`
	for range 2 {
		want(do("POST", "/users", "/users", erin, "Idempotency-Key", "walk-user"), http.StatusCreated)
	}
	want(do("POST", "/users", "/users", `{"email":"frank@example.com","password":"`+apptest.Password+`"}`, "Idempotency-Key", "walk-user"), http.StatusUnprocessableEntity)
	want(do("POST", "/users", "/users", erin, "Idempotency-Key", "walk-user-2"), http.StatusConflict)
	// A retry while the first attempt runs: the record is claimed here, as
	// that attempt would have.
	busy := idempotency.Fingerprint("POST", "POST /api-keys", nil, alice, []byte(`{"name":"busy"}`))
	if _, err := ts.Idempotency().Begin(context.Background(), idempotency.Key{Scope: alice, Value: "walk-busy"}, busy, nil); err != nil {
		t.Fatalf("claiming a record: %v", err)
	}
	r := want(do("POST", "/api-keys", "/api-keys", `{"name":"busy"}`, idem("walk-busy")...), http.StatusConflict)
	if r.ErrorCode(t) != "idempotency_key_in_use" || r.Header.Get("Retry-After") == "" {
		t.Errorf("got %s with Retry-After %q, want idempotency_key_in_use and a Retry-After", r.Body, r.Header.Get("Retry-After"))
	}

	// A path no route takes.
	r = ts.Do(t, "GET", "/no/such/route", "")
	want(r, http.StatusNotFound)
	d.checkResponse(t, "GET /no/such/route 404", "#/components/responses/NoRoute", r)

	// Login throttling.
	for i := 0; ; i++ {
		r := do("POST", "/sessions", "/sessions", `{"email":"carol@example.com","password":"wrong wrong wrong wrong"}`)
		if r.Status == http.StatusTooManyRequests {
			break
		}
		want(r, http.StatusUnauthorized)
		if i == 50 {
			t.Fatal("50 failed logins and no 429")
		}
	}

	// Administration: a non-admin is refused, an admin (created with the
	// CLI, as the README shows) is not.
	for _, rt := range []struct{ method, docPath, path string }{
		{"GET", "/admin/keys", "/admin/keys"},
		{"GET", "/admin/usage", "/admin/usage"},
		{"DELETE", "/admin/keys/{api_key}", "/admin/keys/" + key2},
		{"POST", "/admin/users/{id}/disable", "/admin/users/" + alice + "/disable"},
		{"POST", "/admin/users/{id}/revoke-keys", "/admin/users/" + alice + "/revoke-keys"},
	} {
		want(do(rt.method, rt.docPath, rt.path, "", auth...), http.StatusForbidden)
		want(do(rt.method, rt.docPath, rt.path, ""), http.StatusUnauthorized)
	}
	ts.CreateUser(t, "ops@example.com", true)
	ts.CaughtUp(t)
	admin := apptest.Bearer(want(do("POST", "/sessions", "/sessions", `{"email":"ops@example.com","password":"`+apptest.Password+`"}`), http.StatusOK).JSON(t)["token"].(string))
	want(do("GET", "/admin/keys", "/admin/keys", "", admin...), http.StatusOK)
	want(do("GET", "/admin/keys", "/admin/keys?user="+alice+"&status=active,revoked", "", admin...), http.StatusOK)
	want(do("GET", "/admin/keys", "/admin/keys?status=disabled,expired", "", admin...), http.StatusOK)
	want(do("GET", "/admin/keys", "/admin/keys?status=bogus", "", admin...), http.StatusBadRequest)
	want(do("GET", "/admin/usage", "/admin/usage?window=2h&top=5", "", admin...), http.StatusOK)
	want(do("GET", "/admin/usage", "/admin/usage?top=0", "", admin...), http.StatusBadRequest)
	want(do("DELETE", "/admin/keys/{api_key}", "/admin/keys/ak_nope", "", admin...), http.StatusNotFound)
	want(do("DELETE", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"reason":1}`, admin...), http.StatusBadRequest)
	want(do("DELETE", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"reason":"`+strings.Repeat("x", 70<<10)+`"}`, admin...), http.StatusRequestEntityTooLarge)
	want(do("POST", "/api-keys", "/api-keys", "", auth...), http.StatusCreated)
	want(do("PATCH", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"scopes":["billing:read"]}`, auth...), http.StatusForbidden)
	want(do("PATCH", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"scopes":["billing:read"]}`), http.StatusUnauthorized)
	want(do("PATCH", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"scopes":["billing:read"]}`, admin...), http.StatusOK)
	want(do("PATCH", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"scopes":"x"}`, admin...), http.StatusBadRequest)
	want(do("PATCH", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"name":"x"}`, append(slices.Clone(admin), "If-Match", `"1"`)...), http.StatusPreconditionFailed)
	want(do("PATCH", "/admin/keys/{api_key}", "/admin/keys/ak_nope", `{"name":"x"}`, admin...), http.StatusNotFound)
	for _, op := range []string{"disable", "enable"} {
		path := "/admin/keys/{api_key}/" + op
		want(do("POST", path, "/admin/keys/"+key2+"/"+op, `{"reason":"walk"}`, auth...), http.StatusForbidden)
		want(do("POST", path, "/admin/keys/"+key2+"/"+op, ""), http.StatusUnauthorized)
		want(do("POST", path, "/admin/keys/"+key2+"/"+op, `{"reason":"walk"}`, admin...), http.StatusNoContent)
		want(do("POST", path, "/admin/keys/"+key2+"/"+op, `{"reason":1}`, admin...), http.StatusBadRequest)
		want(do("POST", path, "/admin/keys/ak_nope/"+op, "", admin...), http.StatusNotFound)
	}
	want(do("PATCH", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"credits":{"remaining":3}}`, admin...), http.StatusOK)
	want(do("POST", "/admin/keys/{api_key}/credits", "/admin/keys/"+key2+"/credits", `{"add":2,"reason":"walk"}`, auth...), http.StatusForbidden)
	want(do("POST", "/admin/keys/{api_key}/credits", "/admin/keys/"+key2+"/credits", `{"add":2}`), http.StatusUnauthorized)
	want(do("POST", "/admin/keys/{api_key}/credits", "/admin/keys/"+key2+"/credits", `{"add":2,"reason":"walk"}`, admin...), http.StatusOK)
	want(do("POST", "/admin/keys/{api_key}/credits", "/admin/keys/"+key2+"/credits", `{"add":-2}`, admin...), http.StatusBadRequest)
	want(do("POST", "/admin/keys/{api_key}/credits", "/admin/keys/ak_nope/credits", `{"add":2}`, admin...), http.StatusNotFound)
	want(do("DELETE", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"reason":"leaked"}`, admin...), http.StatusNoContent)
	want(do("POST", "/admin/keys/{api_key}/credits", "/admin/keys/"+key2+"/credits", `{"add":2}`, admin...), http.StatusConflict)
	want(do("PATCH", "/admin/keys/{api_key}", "/admin/keys/"+key2, `{"name":"x"}`, admin...), http.StatusConflict)
	want(do("POST", "/admin/keys/{api_key}/disable", "/admin/keys/"+key2+"/disable", "", admin...), http.StatusConflict)
	want(do("POST", "/admin/keys/{api_key}/enable", "/admin/keys/"+key2+"/enable", "", admin...), http.StatusConflict)
	want(do("POST", "/admin/users/{id}/revoke-keys", "/admin/users/"+alice+"/revoke-keys", "", admin...), http.StatusOK)
	want(do("POST", "/admin/users/{id}/revoke-keys", "/admin/users/usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C/revoke-keys", "", admin...), http.StatusNotFound)
	want(do("POST", "/admin/users/{id}/disable", "/admin/users/usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C/disable", "", admin...), http.StatusNotFound)
	want(do("POST", "/admin/users/{id}/disable", "/admin/users/"+alice+"/disable", `{"reason":"`+strings.Repeat("x", 501)+`"}`, admin...), http.StatusBadRequest)
	want(do("POST", "/admin/users/{id}/disable", "/admin/users/"+alice+"/disable", `{"reason":"compromised"}`, admin...), http.StatusNoContent)
	want(do("GET", "/api-keys", "/api-keys", "", auth...), http.StatusUnauthorized)
	want(do("GET", "/admin/keys", "/admin/keys?status=revoked", "", admin...), http.StatusOK)

	// The same routes, and those of admin keys, signed with an admin key.
	root := ts.RootAdmin(t)
	signed := func(method, docPath, path, body string) apptest.Response {
		t.Helper()
		return do(method, docPath, path, body, ts.AdminSigned(t, root, method, path, body)...)
	}
	want(signed("GET", "/admin/users", "/admin/users", ""), http.StatusOK)
	want(signed("POST", "/admin/users", "/admin/users", `{"email":"dora@example.com","password":"`+apptest.Password+`"}`), http.StatusBadRequest)
	want(signed("POST", "/admin/users", "/admin/users", `{"email":"dora@example.com","password":"`+apptest.Password+`","salt":"0123456789abcdefghijklmnop"}`), http.StatusCreated)
	want(signed("POST", "/admin/users", "/admin/users", `{"email":"dora@example.com","password":"`+apptest.Password+`","salt":"0123456789abcdefghijklmnopq"}`), http.StatusConflict)
	want(signed("POST", "/admin/users/{id}/enable", "/admin/users/"+alice+"/enable", ""), http.StatusNoContent)
	want(signed("POST", "/admin/users/{id}/enable", "/admin/users/usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C/enable", ""), http.StatusNotFound)
	want(signed("GET", "/admin/admin-keys", "/admin/admin-keys", ""), http.StatusOK)
	bob := apptest.NewAdminKey(t, t.TempDir(), "bob")
	bobKey, _ := bob.Public.MarshalText()
	want(do("POST", "/admin/admin-keys", "/admin/admin-keys", `{"name":"bob","key":"`+string(bobKey)+`"}`, admin...), http.StatusForbidden)
	want(signed("POST", "/admin/admin-keys", "/admin/admin-keys", `{"name":"bob","key":"`+string(bobKey)+`"}`), http.StatusCreated)
	want(signed("POST", "/admin/admin-keys", "/admin/admin-keys", `{"name":"bob","key":"`+string(bobKey)+`"}`), http.StatusConflict)
	want(signed("DELETE", "/admin/admin-keys/{id}", "/admin/admin-keys/nope", ""), http.StatusNotFound)
	want(signed("DELETE", "/admin/admin-keys/{id}", "/admin/admin-keys/"+bob.ID, `{"reason":"test"}`), http.StatusNoContent)
	want(signed("DELETE", "/admin/admin-keys/{id}", "/admin/admin-keys/"+root.ID, `{"reason":"test"}`), http.StatusConflict)

	// Erasure: a user with their password, an admin with a signed request
	// only.
	erinToken := apptest.Bearer(want(do("POST", "/sessions", "/sessions", erin), http.StatusOK).JSON(t)["token"].(string))
	want(do("DELETE", "/users/me", "/users/me", `{"password":"wrong wrong wrong wrong"}`, erinToken...), http.StatusForbidden)
	want(do("DELETE", "/users/me", "/users/me", `{"password":1}`, erinToken...), http.StatusBadRequest)
	want(do("DELETE", "/users/me", "/users/me", `{"password":"`+apptest.Password+`"}`, erinToken...), http.StatusNoContent)
	want(do("DELETE", "/users/me", "/users/me", `{"password":"`+apptest.Password+`"}`, erinToken...), http.StatusUnauthorized)
	dora := want(signed("GET", "/admin/users", "/admin/users", ""), http.StatusOK).JSON(t)["users"].([]any)
	doraID := ""
	for _, u := range dora {
		if m := u.(map[string]any); m["email"] == "dora@example.com" {
			doraID = m["id"].(string)
		}
	}
	want(do("POST", "/admin/users/{id}/erase", "/admin/users/"+doraID+"/erase", `{"reason":"r"}`, admin...), http.StatusForbidden)
	want(signed("POST", "/admin/users/{id}/erase", "/admin/users/usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C/erase", ""), http.StatusNotFound)
	want(signed("POST", "/admin/users/{id}/erase", "/admin/users/"+doraID+"/erase", `{"reason":"erasure request"}`), http.StatusOK)
	want(signed("GET", "/admin/users", "/admin/users", ""), http.StatusOK)

	// Sessions: a password change, a revocation and a logout each end
	// sessions (alice keeps her password: the change is to the same one).
	login := func() []string {
		t.Helper()
		return apptest.Bearer(want(do("POST", "/sessions", "/sessions", creds), http.StatusOK).JSON(t)["token"].(string))
	}
	aliceToken := login()
	want(do("POST", "/users/me/password", "/users/me/password", `{"current_password":"wrong wrong wrong wrong","new_password":"`+apptest.Password+`"}`, aliceToken...), http.StatusForbidden)
	want(do("POST", "/users/me/password", "/users/me/password", `{"current_password":"`+apptest.Password+`","new_password":"short"}`, aliceToken...), http.StatusBadRequest)
	want(do("POST", "/users/me/password", "/users/me/password", `{"current_password":"`+apptest.Password+`","new_password":"`+apptest.Password+`"}`, aliceToken...), http.StatusNoContent)
	want(do("POST", "/users/me/password", "/users/me/password", `{"current_password":"`+apptest.Password+`","new_password":"`+apptest.Password+`"}`, aliceToken...), http.StatusUnauthorized)
	aliceToken = login()
	want(do("POST", "/users/me/sessions/revoke", "/users/me/sessions/revoke", `{"x":1}`, aliceToken...), http.StatusBadRequest)
	want(do("POST", "/users/me/sessions/revoke", "/users/me/sessions/revoke", "", aliceToken...), http.StatusNoContent)
	want(do("POST", "/users/me/sessions/revoke", "/users/me/sessions/revoke", "", aliceToken...), http.StatusUnauthorized)
	aliceToken = login()
	want(do("DELETE", "/sessions/current", "/sessions/current", "", aliceToken...), http.StatusNoContent)
	want(do("DELETE", "/sessions/current", "/sessions/current", "", aliceToken...), http.StatusUnauthorized)
	want(signed("POST", "/admin/users/{id}/revoke-sessions", "/admin/users/usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C/revoke-sessions", ""), http.StatusNotFound)
	want(signed("POST", "/admin/users/{id}/revoke-sessions", "/admin/users/"+alice+"/revoke-sessions", `{"reason":1}`), http.StatusBadRequest)
	want(signed("POST", "/admin/users/{id}/revoke-sessions", "/admin/users/"+alice+"/revoke-sessions", `{"reason":"laptop stolen"}`), http.StatusNoContent)

	// Limits: registrations per address, failed validations per key id.
	want(do("GET", "/readyz", "/readyz?strict=1", ""), http.StatusOK)
	for i := 0; ; i++ {
		r := do("POST", "/users", "/users", `{"email":"flood`+strconv.Itoa(i)+`@example.com","password":"`+apptest.Password+`"}`)
		if r.Status == http.StatusTooManyRequests {
			break
		}
		want(r, http.StatusCreated)
		if i == 50 {
			t.Fatal("50 registrations from one address and no 429")
		}
	}
	unknown := []string{"X-Api-Key", apptest.Base64("ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"), "X-Api-Secret", apptest.Base64(secret1)}
	for i := 0; ; i++ {
		r := do("GET", "/validate", "/validate", "", unknown...)
		if r.Status == http.StatusTooManyRequests {
			break
		}
		want(r, http.StatusUnauthorized)
		if i == 50 {
			t.Fatal("50 failed validations of one key and no 429")
		}
	}
	want(do("POST", "/validate", "/validate", "", unknown...), http.StatusTooManyRequests)
}

// waitNodesWalkThrough lists the fleet and runs the commands that take a
// key out of service with ?wait=nodes while a node announced by the test
// (live, never applying) keeps them at 202.
func waitNodesWalkThrough(t *testing.T, ts *apptest.Server, d *openAPIDoc) {
	do := func(method, docPath, path, body string, headers ...string) apptest.Response {
		t.Helper()
		r := ts.Do(t, method, path, body, headers...)
		d.check(t, method, docPath, r)
		return r
	}
	root := ts.RootAdmin(t)
	signed := func(method, docPath, path, body string) apptest.Response {
		t.Helper()
		return do(method, docPath, path, body, ts.AdminSigned(t, root, method, path, body)...)
	}
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Validator)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("keyledger_fleet.ghost", []byte(`{"name":"ghost","version":"v0","applied_seq":0,"staleness_seconds":0}`)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		r := signed("GET", "/admin/nodes", "/admin/nodes", "")
		return r.Status == http.StatusOK && bytes.Contains(r.Body, []byte(`"ghost"`))
	}, "the announced node listed")
	// Registrations from this address are spent by the walk-through: an
	// admin creates the user.
	apptest.WantStatus(t, signed("POST", "/admin/users", "/admin/users",
		`{"email":"wanda@example.com","password":"`+apptest.Password+`","salt":"abcdefghijklmnopqrstuvwxyz"}`), http.StatusCreated)
	token := ts.Login(t, "wanda@example.com", apptest.Password)
	auth := apptest.Bearer(token)
	keys := []string{ts.CreateKey(t, token, "").Key, ts.CreateKey(t, token, "").Key}
	accepted := func(r apptest.Response) {
		t.Helper()
		apptest.WantStatus(t, r, http.StatusAccepted)
		if got := r.Header.Get("Keyledger-Nodes-Applied"); !strings.HasSuffix(got, "/2") {
			t.Errorf("Keyledger-Nodes-Applied: got %q, want serve and the ghost counted", got)
		}
	}
	apptest.WantStatus(t, do("POST", "/api-keys/{api_key}/disable", "/api-keys/"+keys[0]+"/disable?wait=all", "", auth...), http.StatusBadRequest)
	accepted(do("PATCH", "/api-keys/{api_key}", "/api-keys/"+keys[0]+"?wait=nodes", `{"name":"w"}`, auth...))
	accepted(do("POST", "/api-keys/{api_key}/regenerate", "/api-keys/"+keys[0]+"/regenerate?wait=nodes", "", auth...))
	accepted(do("POST", "/api-keys/{api_key}/disable", "/api-keys/"+keys[0]+"/disable?wait=nodes", "", auth...))
	accepted(do("DELETE", "/api-keys/{api_key}", "/api-keys/"+keys[0]+"?wait=nodes", "", auth...))
	accepted(signed("PATCH", "/admin/keys/{api_key}", "/admin/keys/"+keys[1]+"?wait=nodes", `{"name":"w"}`))
	accepted(signed("POST", "/admin/keys/{api_key}/disable", "/admin/keys/"+keys[1]+"/disable?wait=nodes", ""))
	accepted(signed("DELETE", "/admin/keys/{api_key}", "/admin/keys/"+keys[1]+"?wait=nodes", ""))

	// Who a session is, and the log's integrity (admins only).
	me := do("GET", "/users/me", "/users/me", "", auth...)
	apptest.WantStatus(t, me, http.StatusOK)
	if got := me.JSON(t); got["email"] != "wanda@example.com" || got["role"] != "user" {
		t.Errorf("GET /users/me: %s", me.Body)
	}
	apptest.WantStatus(t, do("GET", "/admin/integrity", "/admin/integrity", "", auth...), http.StatusForbidden)
	apptest.WantStatus(t, signed("POST", "/admin/integrity/verify", "/admin/integrity/verify", ""), http.StatusAccepted)
	apptest.WantStatus(t, signed("GET", "/admin/integrity", "/admin/integrity", ""), http.StatusOK)
}
