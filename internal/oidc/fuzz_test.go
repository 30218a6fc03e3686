package oidc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// FuzzOpen feeds untrusted link tokens and login cookies to the parsers:
// whatever the input, no panic, and nothing opens that was not sealed
// under the key.
func FuzzOpen(f *testing.F) {
	flow, err := New(Config{Issuer: "https://id.example.com", ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://k.example.com/oidc/callback", Key: testKey()})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := flow.LinkToken(Link{Identity: Identity{Issuer: "https://id.example.com", Subject: "s", Email: "a@example.com"},
		UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("")
	f.Add("AAAA")
	f.Add(strings.Repeat("A", 40))
	f.Fuzz(func(t *testing.T, s string) {
		if l, err := flow.OpenLinkToken(s); err == nil {
			// Only a sealed token opens, and then whole: a valid user id
			// and identity, and never as a login cookie too.
			if !domain.ValidUserID(l.UserID) || domain.ValidateIdentity(l.Issuer, l.Subject) != nil || l.Email == "" {
				t.Fatalf("OpenLinkToken(%q): got %+v, want a complete link or an error", s, l)
			}
			var c login
			if flow.open(aadLogin, s, &c) {
				t.Fatalf("%q opens as a link token and as a login cookie", s)
			}
		}
		// A cookie that does not open ends the login before any network.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := flow.Finish(ctx, Callback{Cookie: s, State: "x", Code: "y"}); err == nil {
			t.Fatalf("Finish with cookie %q: got nil, want an error", s)
		}
	})
}
