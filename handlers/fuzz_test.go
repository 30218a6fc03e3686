package handlers_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
)

// bodyRoute is a route that reads a JSON body, with the headers it needs
// to get as far as reading it.
type bodyRoute struct {
	method, path string
	headers      []string
}

// bodyRoutes are the routes that read a JSON body, as h's admin alice
// calls them. The admin routes act on a user of their own, so that
// disabling it does not lock alice out.
func bodyRoutes(h *harness, target, team string) []bodyRoute {
	auth := []string{"Authorization", "Bearer " + h.token}
	return []bodyRoute{
		{"POST", "/users", nil},
		{"POST", "/sessions", nil},
		{"POST", "/api-keys", auth},
		{"DELETE", "/admin/keys/ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", auth},
		{"POST", "/admin/users/" + target + "/disable", auth},
		{"POST", "/admin/users/" + target + "/revoke-keys", auth},
		{"POST", "/users/verify", nil},
		{"POST", "/users/verify/resend", nil},
		{"POST", "/admin/invitations", auth},
		{"POST", "/api-keys/ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C/credits", auth},
		{"PATCH", "/api-keys/ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", auth},
		{"POST", "/admin/keys/ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C/credits", auth},
		{"POST", "/teams", auth},
		{"POST", "/teams/join", auth},
		{"POST", "/teams/" + team + "/invitations", auth},
		{"PATCH", "/teams/" + team + "/members/" + target, auth},
		{"POST", "/teams/" + team + "/api-keys", auth},
		{"POST", "/teams/" + team + "/service-accounts", auth},
		{"POST", "/admin/teams/" + team + "/transfer", auth},
		{"POST", "/admin/teams/" + team + "/disable", auth},
	}
}

// numBodyRoutes is len(bodyRoutes(...)), for the seed corpus.
const numBodyRoutes = 20

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
		`{"rate_limit":{"limit":5,"window":"1m"},"credits":{"remaining":10,"refill":{"amount":5,"interval":"1h"}}}`,
		`{"rate_limit":{"limit":-1,"window":"1m"}}`,
		`{"rate_limit":{"limit":1,"window":"99999999999d"}}`,
		`{"credits":{"remaining":1e3,"refill":null}}`,
		`{"credits":{"remaining":1,"refill":{"amount":1}}}`,
		`{"rate_limit":null,"credits":null}`,
		`{"add":5}`, `{"add":0}`, `{"add":18446744073709551616}`, `{"add":1,"reason":"x"}`,
		`{"email":"a","email":"b"}`,
		`{"name":"Payments"}`, `{"name":""}`, `{"role":"developer","email":"dev@example.com","expires_in":"1h"}`,
		`{"role":"owner"}`, `{"role":"god"}`, `{"role":"viewer","expires_in":"-1h"}`, `{"role":"viewer","expires_in":"9999h"}`,
		`{"token":"tmi_01JH6Z3Q8X4N6V2R9T5M7K3B1C.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, `{"token":"inv_x.y"}`,
		`{"owner":"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C","reason":"left"}`, `{"owner":"nobody"}`,
		`{"Email":"a@example.com","Password":"correct horse battery staple"}`,
		"{\"name\":\"\xff\"}",
		`{"name":"\u0000"}`,
		`{}`, ``, `[]`, `null`, `{"a":`,
	} {
		for i := range numBodyRoutes {
			f.Add(uint8(i), s)
		}
	}
	// One ledger for the whole run: the routes' effects (a user
	// registered, one disabled) are fine to pile up.
	h := newHarness(f, func(c *handlers.Config) {
		c.LoginFailures = failures(f, 3, time.Minute)
		c.Registrations = bucket(f, time.Minute, 3)
	})
	target, err := h.service.RegisterUser(ledgertest.Context(f), ledger.RegisterUser{Email: "target@example.com", Password: testPassword})
	if err != nil {
		f.Fatal(err)
	}
	team, err := h.service.CreateTeam(ledgertest.Context(f), ledger.CreateTeam{UserID: h.alice.ID, Name: "fuzzed"})
	if err != nil {
		f.Fatal(err)
	}
	routes := bodyRoutes(h, target.ID, team.ID)
	if len(routes) != numBodyRoutes {
		f.Fatalf("numBodyRoutes is %d, want %d", numBodyRoutes, len(routes))
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		rt := routes[int(route)%len(routes)]
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
