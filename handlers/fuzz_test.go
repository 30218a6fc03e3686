package handlers_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/handlers"
)

// bodyRoutes are the routes that read a JSON body, with the headers each
// needs to get as far as reading it.
var bodyRoutes = []struct {
	method, path string
	headers      []string
}{
	{"POST", "/users", nil},
	{"POST", "/sessions", nil},
	{"POST", "/api-keys", []string{"Authorization", "Bearer " + testToken}},
	{"DELETE", "/admin/keys/ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", []string{"Authorization", "Bearer " + testToken}},
	{"POST", "/admin/users/" + testUserID + "/disable", []string{"Authorization", "Bearer " + testToken}},
	{"POST", "/admin/users/" + testUserID + "/revoke-keys", []string{"Authorization", "Bearer " + testToken}},
}

// statusOfCode is what each error code must be answered with.
var statusOfCode = map[string]int{
	"invalid": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
	"too_large": 413, "rate_limited": 429,
}

// FuzzAPI_RequestBody sends arbitrary bodies through the real handlers of
// every route that reads one (with the limits on): no panic and no 5xx;
// a failure is a 4xx with a JSON error whose code matches its status.
func FuzzAPI_RequestBody(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@example.com","password":"correct horse battery staple"}`,
		`{"email":"alice@example.com","password":"correct horse battery staple"}`,
		`{"name":"ci","expires_at":"2030-01-02T15:04:05Z"}`,
		`{"name":"ci","expires_at":"2001-01-01T00:00:00Z"}`,
		`{"expires_at":"tomorrow"}`,
		`{"reason":"leaked"}`,
		`{"email":"a","email":"b"}`,
		`{"Email":"a@example.com","Password":"correct horse battery staple"}`,
		"{\"name\":\"\xff\"}",
		`{"name":"\u0000"}`,
		`{}`, ``, `[]`, `null`, `{"a":`,
	} {
		for i := range bodyRoutes {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		h := newHarness(t, func(c *handlers.Config) {
			c.LoginFailures = failures(t, 3, time.Minute)
			c.Registrations = bucket(t, time.Minute, 3)
		})
		rt := bodyRoutes[int(route)%len(bodyRoutes)]
		r := h.do(rt.method, rt.path, "192.0.2.1:1", body, rt.headers...)
		if r.status >= 500 || r.status < 200 {
			t.Fatalf("%s %s %q: got %d %s, want no 5xx", rt.method, rt.path, body, r.status, r.body)
		}
		if r.status < 400 {
			return
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error.Message == "" {
			t.Fatalf("%s %s %q: got %d %q, want a JSON error", rt.method, rt.path, body, r.status, r.body)
		}
		if want, ok := statusOfCode[e.Error.Code]; !ok || want != r.status {
			t.Fatalf("%s %s %q: got %d with code %q", rt.method, rt.path, body, r.status, e.Error.Code)
		}
		if r.status == http.StatusTooManyRequests && r.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s %q: got 429 without Retry-After", rt.method, rt.path, body)
		}
	})
}
