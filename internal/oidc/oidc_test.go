package oidc

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/oidc/oidctest"
)

// redirect is where the provider sends the browser back; nothing listens
// there: Authorize stops at the redirect.
const redirect = "http://127.0.0.1:9/oidc/callback"

var testUsers = []oidctest.User{
	{ID: "alice", Username: "alice", Password: "alice-password", Email: "Alice@Example.com", EmailVerified: true},
	{ID: "mallory", Username: "mallory", Password: "mallory-password", Email: "mallory@example.com", EmailVerified: false},
	{ID: "eve", Username: "eve", Password: "eve-password", Email: "eve@elsewhere.org", EmailVerified: true},
}

func testKey() []byte { return []byte(strings.Repeat("k", KeySize)) }

func newFlow(t *testing.T, p *oidctest.Provider, edit func(*Config)) *Flow {
	t.Helper()
	cfg := Config{Issuer: p.Issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
		RedirectURL: redirect, Key: testKey()}
	if edit != nil {
		edit(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// authorize starts a login and authorizes it at the provider as username.
func authorize(t *testing.T, f *Flow, p *oidctest.Provider, username, password string) (Started, Callback) {
	t.Helper()
	st, err := f.Start(context.Background())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	back := p.Authorize(t, st.URL, username, password)
	if got := back.Scheme + "://" + back.Host + back.Path; got != redirect {
		t.Fatalf("provider redirected to %s, want %s", got, redirect)
	}
	q := back.Query()
	return st, Callback{Cookie: st.Cookie.Value, State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
}

func TestFlow(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, redirect, testUsers...)
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		f := newFlow(t, p, nil)
		st, cb := authorize(t, f, p, "alice", "alice-password")
		u, err := url.Parse(st.URL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Errorf("authorization URL %s: want PKCE S256, a nonce and a state", st.URL)
		}
		c := st.Cookie
		if !c.HttpOnly || c.SameSite != 2 /* http.SameSiteLaxMode */ || c.Secure || c.MaxAge <= 0 || c.Path != CookiePath {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, not Secure over http, a max age, path %s", c, CookiePath)
		}
		if strings.Contains(c.Value, q.Get("state")) || strings.Contains(c.Value, q.Get("nonce")) {
			t.Error("cookie holds the state or nonce in clear, want them sealed")
		}
		id, err := f.Finish(ctx, cb)
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if id.Issuer != p.Issuer || id.Subject != "alice" || id.Email != "alice@example.com" || id.DomainAllowed {
			t.Errorf("got %+v, want alice's identity, email normalised, no allow list", id)
		}
	})
	t.Run("AllowedDomain", func(t *testing.T) {
		f := newFlow(t, p, func(c *Config) { c.AllowedDomains = []string{"EXAMPLE.com"} })
		_, cb := authorize(t, f, p, "alice", "alice-password")
		id, err := f.Finish(ctx, cb)
		if err != nil || !id.DomainAllowed {
			t.Fatalf("got %+v, %v, want alice with DomainAllowed", id, err)
		}
	})
	refused := []struct {
		name     string
		edit     func(*Config)
		user     string
		tamper   func(t *testing.T, f *Flow, cb *Callback)
		want     error
		wantKind domain.Kind
	}{
		{name: "ErrTamperedState", user: "alice", want: ErrState, wantKind: domain.Unauthorized,
			tamper: func(_ *testing.T, _ *Flow, cb *Callback) { cb.State = cb.State[:len(cb.State)-1] + flip(cb.State) }},
		{name: "ErrNoCookie", user: "alice", want: ErrNoLogin, wantKind: domain.Unauthorized,
			tamper: func(_ *testing.T, _ *Flow, cb *Callback) { cb.Cookie = "" }},
		{name: "ErrForgedCookie", user: "alice", want: ErrNoLogin, wantKind: domain.Unauthorized,
			tamper: func(_ *testing.T, _ *Flow, cb *Callback) {
				cb.Cookie = cb.Cookie[:10] + flip(cb.Cookie[10:11]) + cb.Cookie[11:]
			}},
		{name: "ErrOtherBrowsersCookie", user: "alice", want: ErrState, wantKind: domain.Unauthorized,
			tamper: func(t *testing.T, f *Flow, cb *Callback) {
				st, err := f.Start(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				cb.Cookie = st.Cookie.Value
			}},
		{name: "ErrWrongNonce", user: "alice", want: ErrNonce, wantKind: domain.Unauthorized,
			// A cookie with the right state and verifier but another
			// nonce: the ID token must carry the cookie's nonce.
			tamper: func(t *testing.T, f *Flow, cb *Callback) {
				var l login
				if !f.open(aadLogin, cb.Cookie, &l) {
					t.Fatal("cookie does not open")
				}
				l.Nonce = randomString()
				v, err := f.seal(aadLogin, l)
				if err != nil {
					t.Fatal(err)
				}
				cb.Cookie = v
			}},
		{name: "ErrWrongVerifier", user: "alice", want: ErrCode, wantKind: domain.Unauthorized,
			tamper: func(t *testing.T, f *Flow, cb *Callback) {
				var l login
				if !f.open(aadLogin, cb.Cookie, &l) {
					t.Fatal("cookie does not open")
				}
				l.Verifier = strings.Repeat("v", 43)
				v, err := f.seal(aadLogin, l)
				if err != nil {
					t.Fatal(err)
				}
				cb.Cookie = v
			}},
		{name: "ErrLinkTokenAsCookie", user: "alice", want: ErrNoLogin, wantKind: domain.Unauthorized,
			tamper: func(t *testing.T, f *Flow, cb *Callback) {
				tok, err := f.LinkToken(Link{Identity: Identity{Issuer: "https://i", Subject: "s", Email: "a@b.c"},
					UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"})
				if err != nil {
					t.Fatal(err)
				}
				cb.Cookie = tok
			}},
		{name: "ErrProviderError", user: "alice", want: ErrProviderError, wantKind: domain.Unauthorized,
			tamper: func(_ *testing.T, _ *Flow, cb *Callback) { cb.Code, cb.Error = "", "access_denied" }},
		{name: "ErrUnverifiedEmail", user: "mallory", want: ErrUnverified, wantKind: domain.Forbidden},
		{name: "ErrDomain", user: "eve", want: ErrDomain, wantKind: domain.Forbidden,
			edit: func(c *Config) { c.AllowedDomains = []string{"example.com"} }},
		{name: "ErrSubdomainIsNotTheDomain", user: "eve", want: ErrDomain, wantKind: domain.Forbidden,
			edit: func(c *Config) { c.AllowedDomains = []string{"org"} }},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(t, p, tc.edit)
			_, cb := authorize(t, f, p, tc.user, tc.user+"-password")
			if tc.tamper != nil {
				tc.tamper(t, f, &cb)
			}
			_, err := f.Finish(ctx, cb)
			if !errors.Is(err, tc.want) || domain.KindOf(err) != tc.wantKind {
				t.Fatalf("got %v, want %v (%s)", err, tc.want, tc.wantKind)
			}
		})
	}
	t.Run("ErrReplayedCode", func(t *testing.T) {
		f := newFlow(t, p, nil)
		_, cb := authorize(t, f, p, "alice", "alice-password")
		if _, err := f.Finish(ctx, cb); err != nil {
			t.Fatalf("first Finish: %v", err)
		}
		if _, err := f.Finish(ctx, cb); !errors.Is(err, ErrCode) {
			t.Fatalf("second Finish with the same code and cookie: got %v, want %v", err, ErrCode)
		}
	})
	t.Run("ErrExpiredLogin", func(t *testing.T) {
		var skew atomic.Int64
		f := newFlow(t, p, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) } })
		_, cb := authorize(t, f, p, "alice", "alice-password")
		skew.Store(int64(LoginTTL + time.Minute))
		if _, err := f.Finish(ctx, cb); !errors.Is(err, ErrNoLogin) {
			t.Fatalf("got %v, want %v", err, ErrNoLogin)
		}
	})
	t.Run("ErrOtherKey", func(t *testing.T) {
		f := newFlow(t, p, nil)
		_, cb := authorize(t, f, p, "alice", "alice-password")
		other := newFlow(t, p, func(c *Config) { c.Key = []byte(strings.Repeat("o", KeySize)) })
		if _, err := other.Finish(ctx, cb); !errors.Is(err, ErrNoLogin) {
			t.Fatalf("got %v, want %v", err, ErrNoLogin)
		}
	})
}

// flip returns a character other than s's last.
func flip(s string) string {
	if strings.HasSuffix(s, "A") {
		return "B"
	}
	return "A"
}

func TestFlow_ProviderDown(t *testing.T) {
	t.Parallel()
	f, err := New(Config{Issuer: "http://127.0.0.1:9/", ClientID: "c", ClientSecret: "s", RedirectURL: redirect, Key: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Start(context.Background()); domain.KindOf(err) != domain.Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
}

func TestNew_Refuses(t *testing.T) {
	t.Parallel()
	good := Config{Issuer: "https://id.example.com", ClientID: "c", ClientSecret: "s", RedirectURL: "https://k.example.com/oidc/callback", Key: testKey()}
	if _, err := New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"issuer not a URL":  func(c *Config) { c.Issuer = "id.example.com" },
		"issuer with query": func(c *Config) { c.Issuer = "https://id.example.com/?x=1" },
		"no client id":      func(c *Config) { c.ClientID = "" },
		"no secret":         func(c *Config) { c.ClientSecret = "" },
		"relative redirect": func(c *Config) { c.RedirectURL = "/oidc/callback" },
		"short key":         func(c *Config) { c.Key = c.Key[:16] },
		"domain with @":     func(c *Config) { c.AllowedDomains = []string{"a@example.com"} },
		"empty domain":      func(c *Config) { c.AllowedDomains = []string{" "} },
	} {
		c := good
		edit(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: got nil, want an error", name)
		}
	}
}

func TestLinkToken(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64
	f, err := New(Config{Issuer: "https://id.example.com", ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://k.example.com/oidc/callback", Key: testKey(),
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	want := Link{Identity: Identity{Issuer: "https://id.example.com", Subject: "248289761001", Email: "a@example.com", DomainAllowed: true},
		UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"}
	tok, err := f.LinkToken(want)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, "248289761001") || strings.Contains(tok, "example") {
		t.Error("link token shows the identity in clear, want it sealed")
	}
	got, err := f.OpenLinkToken(tok)
	if err != nil || got != want {
		t.Fatalf("got %+v, %v, want %+v", got, err, want)
	}
	st, err := f.seal(aadLogin, login{State: "s", Nonce: "n", Verifier: "v", Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"empty": "", "garbage": "!!!", "truncated": tok[:len(tok)-2], "login cookie": st,
		"long": strings.Repeat("A", MaxSealedLength+1),
	} {
		if _, err := f.OpenLinkToken(bad); !errors.Is(err, ErrLinkToken) {
			t.Errorf("%s: got %v, want %v", name, err, ErrLinkToken)
		}
	}
	skew.Store(int64(LinkTTL + time.Minute))
	if _, err := f.OpenLinkToken(tok); !errors.Is(err, ErrLinkToken) {
		t.Errorf("expired: got %v, want %v", err, ErrLinkToken)
	}
}
