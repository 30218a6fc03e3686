package audit

import (
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// FuzzRequestRoute: the signature base of a kept request comes from the
// log, which whoever holds the ledger's signing key writes. Reading the
// route from it never panics, and a route it reads is one the base records
// exactly once.
func FuzzRequestRoute(f *testing.F) {
	input := `("@method" "@target-uri" "content-digest");created=1;expires=2;keyid="k";nonce="0123456789abcdef";alg="ed25519";tag="keyledger-admin-v1"`
	f.Add(`"@method": DELETE` + "\n" + `"@target-uri": http://127.0.0.1:8080/admin/keys/ak_01` + "\n" + `"@signature-params": ` + input)
	f.Add(`"@method": POST` + "\n" + `"@authority": x` + "\n" + `"@path": /admin/users/usr_01/disable` + "\n" + `"@signature-params": ` + input)
	f.Add(`"@method": POST` + "\n" + `"@method": DELETE` + "\n" + `"@target-uri": /admin/users`)
	f.Add(`"@method": GET` + "\n" + `"@target-uri": http://[::1` + "\n")
	f.Add(`"@method": ` + "\n" + `"@target-uri": %zz`)
	f.Fuzz(func(t *testing.T, base string) {
		method, path, ok := requestRoute(domain.SignedRequest{Base: base})
		if !ok {
			if method != "" || path != "" {
				t.Fatalf("not ok, yet %q %q", method, path)
			}
			return
		}
		if method == "" || path == "" {
			t.Fatalf("ok with method %q, path %q", method, path)
		}
		if _, n := component(base, "@method"); n != 1 {
			t.Fatalf("method %q read from %d lines", method, n)
		}
		if !strings.Contains(base, `"@method": `+method) {
			t.Fatalf("method %q not in the base", method)
		}
	})
}

func TestRequestRoute(t *testing.T) {
	params := "\n" + `"@signature-params": ("@method" "@target-uri");keyid="k"`
	for name, c := range map[string]struct {
		base         string
		method, path string
		ok           bool
	}{
		"TargetURI":      {`"@method": DELETE` + "\n" + `"@target-uri": https://ledger.example.com/admin/keys/ak_01` + params, "DELETE", "/admin/keys/ak_01", true},
		"QueryIgnored":   {`"@method": DELETE` + "\n" + `"@target-uri": http://127.0.0.1:8080/admin/keys/ak_01?x=1` + params, "DELETE", "/admin/keys/ak_01", true},
		"Escaped":        {`"@method": POST` + "\n" + `"@target-uri": http://h/admin/users/usr%5F01/disable` + params, "POST", "/admin/users/usr_01/disable", true},
		"AuthorityPath":  {`"@method": POST` + "\n" + `"@authority": h` + "\n" + `"@path": /admin/users` + params, "POST", "/admin/users", true},
		"NoMethod":       {`"@target-uri": http://h/admin/users` + params, "", "", false},
		"TwoMethods":     {`"@method": POST` + "\n" + `"@method": DELETE` + "\n" + `"@target-uri": http://h/admin/users` + params, "", "", false},
		"TwoTargets":     {`"@method": POST` + "\n" + `"@target-uri": http://h/admin/users` + "\n" + `"@target-uri": http://h/admin/keys/x` + params, "", "", false},
		"NoPath":         {`"@method": POST` + params, "", "", false},
		"EmptyPath":      {`"@method": POST` + "\n" + `"@target-uri": http://h` + params, "", "", false},
		"BadURI":         {`"@method": POST` + "\n" + `"@target-uri": http://h/%zz` + params, "", "", false},
		"HeaderNotRoute": {`"@method": POST` + "\n" + `"x-target-uri": http://h/admin/users` + params, "", "", false},
	} {
		method, path, ok := requestRoute(domain.SignedRequest{Base: c.base})
		if method != c.method || path != c.path || ok != c.ok {
			t.Errorf("%s: got %q %q %v, want %q %q %v", name, method, path, ok, c.method, c.path, c.ok)
		}
	}
}
