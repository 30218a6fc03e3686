package validator_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyledger/keyledger/validator"
)

// BenchmarkValidateScopes measures /validate (the handler, without the
// network) for keys with three scopes, with no scope required and with
// required scopes checked, by query and by header, granted and missing,
// in the same run.
//
//	go test -run '^$' -bench ValidateScopes ./validator
func BenchmarkValidateScopes(b *testing.B) {
	l := benchNewLog(b)
	l.scopes = []string{"orders:read", "billing:*", "reports:read"}
	l.add(b, benchValidateKeys, 16)
	v, _ := benchOpen(b, l.srv, validator.WithFailureLimit(validator.NoLimit, 0))
	q := benchNewQueries(b, l)
	n := len(q.keys)
	auth := make([]string, n)
	for i := range q.keys {
		auth[i] = "ApiKey " + base64.StdEncoding.EncodeToString([]byte(q.keys[i]+":"+q.secrets[i]))
	}
	h := v.ValidateHandler()
	for _, c := range []struct {
		name, target, header string
		want                 int
	}{
		{"NoScopeRequired", "/validate", "", http.StatusOK},
		{"QueryScopeGranted", "/validate?scope=orders:read", "", http.StatusOK},
		{"HeaderScopesGranted", "/validate", "orders:read billing:write", http.StatusOK},
		{"QueryScopeMissing", "/validate?scope=orders:write", "", http.StatusForbidden},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, c.target, nil)
				r.Header.Set("Authorization", auth[i%n])
				if c.header != "" {
					r.Header.Set(validator.HeaderRequiredScopes, c.header)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != c.want {
					b.Fatalf("got %d %s, want %d", w.Code, w.Body, c.want)
				}
				i++
			}
		})
	}
	// The library: Validate alone, and with the scope check a service
	// makes (Identity.MissingScope, as RequireScopes does).
	b.Run("Validate", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := v.Validate(b.Context(), q.keys[i%n], q.secrets[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("ValidateAndRequireScope", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id, err := v.Validate(b.Context(), q.keys[i%n], q.secrets[i%n])
			if err != nil {
				b.Fatal(err)
			}
			if _, missing := id.MissingScope("orders:read"); missing {
				b.Fatal("orders:read missing")
			}
			i++
		}
	})
}
