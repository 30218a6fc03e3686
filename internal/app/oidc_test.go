package app_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/oidc/oidctest"
)

// The provider's users. Subjects are distinctive so that the raw log can
// be searched for them.
var oidcUsers = []oidctest.User{
	{ID: "sub-alice-4f1c9a", Username: "alice", Password: "alice-password", Email: "alice.oidc@example.com", EmailVerified: true},
	{ID: "sub-bob-77d2e0", Username: "bob", Password: "bob-password", Email: "bob.oidc@example.com", EmailVerified: true},
	{ID: "sub-mallory-0b9e", Username: "mallory", Password: "mallory-password", Email: "mallory.oidc@example.com", EmailVerified: false},
	{ID: "sub-eve-5a5a11", Username: "eve", Password: "eve-password", Email: "eve@elsewhere.org", EmailVerified: true},
	{ID: "sub-carol-c4r01", Username: "carol", Password: "carol-password", Email: "carol.oidc@example.com", EmailVerified: true},
}

// oidcServer starts a provider and a serve that logs in through it, with
// --oidc-allowed-domains example.com; edit changes serve's configuration
// further (nil: none).
func oidcServer(t *testing.T, edit func(*app.ServeConfig)) (*apptest.Server, *oidctest.Provider) {
	t.Helper()
	addr := apptest.FreeAddr(t)
	p := oidctest.Start(t, "http://"+addr+"/oidc/callback", oidcUsers...)
	dir := t.TempDir()
	secret := filepath.Join(dir, "oidc-client-secret")
	if err := os.WriteFile(secret, []byte(oidctest.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := apptest.StartWith(t, dir, func(c *app.ServeConfig) {
		c.HTTPAddr = addr
		c.SignUp.Registration = "open"
		c.OIDC = app.OIDCConfig{Issuer: p.Issuer, ClientID: oidctest.ClientID, ClientSecretFile: secret,
			AllowedDomains: []string{"example.com"}}
		if edit != nil {
			edit(c)
		}
	})
	t.Cleanup(func() { ts.Stop(t) })
	return ts, p
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// startLogin asks serve for a login: the provider URL it redirects to and
// the login cookie.
func startLogin(t *testing.T, ts *apptest.Server) (string, *http.Cookie) {
	t.Helper()
	resp, err := noRedirects.Get(ts.Base + "/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /oidc/login: got %d, want 302", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "keyledger_oidc" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("GET /oidc/login: cookie %+v, want an HttpOnly SameSite=Lax login cookie", cookie)
	}
	return resp.Header.Get("Location"), cookie
}

// callback sends the browser back to serve with the cookie given.
func callback(t *testing.T, back *url.URL, cookie *http.Cookie) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, back.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
}

// oidcLogin logs in at the provider as username and returns serve's
// answer to the callback.
func oidcLogin(t *testing.T, ts *apptest.Server, p *oidctest.Provider, username string) apptest.Response {
	t.Helper()
	loc, cookie := startLogin(t, ts)
	back := p.Authorize(t, loc, username, username+"-password")
	return callback(t, back, cookie)
}

// session checks a 200 session answer and returns its token and user id.
func session(t *testing.T, r apptest.Response) (token, userID string) {
	t.Helper()
	apptest.WantStatus(t, r, http.StatusOK)
	m := r.JSON(t)
	token, _ = m["token"].(string)
	userID, _ = m["user_id"].(string)
	if token == "" || !strings.HasPrefix(userID, "usr_") || m["expires_at"] == nil {
		t.Fatalf("got %s, want a session token, its expiry and a user id", r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", r.Header.Get("Cache-Control"))
	}
	return token, userID
}

// TestOIDC_FirstLoginCreatesTheUser: a first login through the provider
// registers a user without password, whose session works like a password
// login's; the second login is the same user; password login refuses
// the user as it refuses a wrong password.
func TestOIDC_FirstLoginCreatesTheUser(t *testing.T) {
	t.Parallel()
	ts, p := oidcServer(t, nil)
	token, alice := session(t, oidcLogin(t, ts, p, "alice"))
	apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...), http.StatusOK)
	k := ts.CreateKey(t, token, "")
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Errorf("the OIDC user's key: got %d, want 200", got)
	}
	token2, again := session(t, oidcLogin(t, ts, p, "alice"))
	if again != alice || token2 == token {
		t.Errorf("second login: got user %s (new token: %v), want %s with a new session", again, token2 != token, alice)
	}
	// The same sessions as POST /sessions: a logout ends this one only.
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/sessions/current", "", apptest.Bearer(token)...), http.StatusNoContent)
	apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...), http.StatusUnauthorized)
	apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token2)...), http.StatusOK)

	// No password: every password is wrong, answered like a wrong one.
	for _, pw := range []string{"", "alice-password", apptest.Password} {
		got := ts.Do(t, "POST", "/sessions", `{"email":"alice.oidc@example.com","password":"`+pw+`"}`)
		unknown := ts.Do(t, "POST", "/sessions", `{"email":"nobody.oidc@example.com","password":"`+pw+`"}`)
		if got.Status != http.StatusUnauthorized || string(got.Body) != string(unknown.Body) {
			t.Errorf("password login of the OIDC user with %q: got %d %s, want what an unknown address gets: %d %s",
				pw, got.Status, got.Body, unknown.Status, unknown.Body)
		}
	}
	// The log holds neither the address nor the provider's subject.
	raw := apptest.AllStreamData(t, ts)
	for _, s := range []string{"alice.oidc@example.com", "sub-alice-4f1c9a", p.Issuer} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the raw log holds %q in clear", s)
		}
	}
	if !bytes.Contains(raw, []byte(`"type":"identity.linked"`)) {
		t.Error("the raw log has no identity.linked")
	}
	// Nothing secret in serve's log.
	logs := ts.Logs.String()
	for _, s := range []string{"alice.oidc@example.com", "sub-alice-4f1c9a", token, oidctest.ClientSecret + `"`} {
		if strings.Contains(logs, s) {
			t.Errorf("serve's log holds %q", s)
		}
	}
}

// TestOIDC_Refused: each attack on the callback is refused with the
// status it calls for, and no user is created.
func TestOIDC_Refused(t *testing.T) {
	t.Parallel()
	ts, p := oidcServer(t, nil)
	head := apptest.StreamHead(t, ts)

	t.Run("ErrTamperedState", func(t *testing.T) {
		loc, cookie := startLogin(t, ts)
		back := p.Authorize(t, loc, "alice", "alice-password")
		q := back.Query()
		q.Set("state", q.Get("state")+"x")
		back.RawQuery = q.Encode()
		r := callback(t, back, cookie)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
		if r.ErrorCode(t) != "unauthorized" {
			t.Errorf("got %s, want code unauthorized", r.Body)
		}
	})
	t.Run("ErrNoCookie", func(t *testing.T) {
		loc, _ := startLogin(t, ts)
		back := p.Authorize(t, loc, "alice", "alice-password")
		apptest.WantStatus(t, callback(t, back, nil), http.StatusUnauthorized)
	})
	t.Run("ErrOtherBrowsersCookie", func(t *testing.T) {
		// The victim's browser holds its own login; the attacker's code
		// and state arrive with it (login CSRF): the state does not match.
		loc, _ := startLogin(t, ts)
		back := p.Authorize(t, loc, "alice", "alice-password")
		_, victims := startLogin(t, ts)
		apptest.WantStatus(t, callback(t, back, victims), http.StatusUnauthorized)
	})
	t.Run("ErrReplayedCode", func(t *testing.T) {
		loc, cookie := startLogin(t, ts)
		back := p.Authorize(t, loc, "carol", "carol-password")
		session(t, callback(t, back, cookie))
		r := callback(t, back, cookie)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
		// Neither the code, the state nor the cookie reach serve's log.
		for _, s := range []string{back.Query().Get("code"), back.Query().Get("state"), cookie.Value} {
			if strings.Contains(ts.Logs.String(), s) {
				t.Errorf("serve's log holds %q", s)
			}
		}
	})
	t.Run("ErrUnverifiedEmail", func(t *testing.T) {
		r := oidcLogin(t, ts, p, "mallory")
		apptest.WantStatus(t, r, http.StatusForbidden)
		if !strings.Contains(string(r.Body), "verified") {
			t.Errorf("got %s, want a message about the unverified address", r.Body)
		}
	})
	t.Run("ErrDomainNotAllowed", func(t *testing.T) {
		r := oidcLogin(t, ts, p, "eve")
		apptest.WantStatus(t, r, http.StatusForbidden)
		if !strings.Contains(string(r.Body), "domain") {
			t.Errorf("got %s, want a message about the domain", r.Body)
		}
	})
	t.Run("ErrProviderDenied", func(t *testing.T) {
		loc, cookie := startLogin(t, ts)
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		back, _ := url.Parse(ts.Base + "/oidc/callback?error=access_denied&state=" + url.QueryEscape(u.Query().Get("state")))
		apptest.WantStatus(t, callback(t, back, cookie), http.StatusUnauthorized)
	})
	t.Run("ErrGarbage", func(t *testing.T) {
		back, _ := url.Parse(ts.Base + "/oidc/callback?code=" + strings.Repeat("c", 5000) + "&state=%ff%00")
		apptest.WantStatus(t, callback(t, back, &http.Cookie{Name: "keyledger_oidc", Value: strings.Repeat("A", 3000)}),
			http.StatusUnauthorized)
	})
	// Only carol's login (ErrReplayedCode's first) created anything.
	ts.CaughtUp(t)
	if got := apptest.StreamHead(t, ts); got != head+3 {
		t.Errorf("stream head: got %d, want %d (carol's registration only)", got, head+3)
	}
}

// TestOIDC_LinkNeedsThePassword: an address that belongs to a password
// account links to the provider's identity only with that password; the
// link token works once; afterwards the provider logs in the account.
func TestOIDC_LinkNeedsThePassword(t *testing.T) {
	t.Parallel()
	ts, p := oidcServer(t, nil)
	bob := ts.Register(t, "bob.oidc@example.com", apptest.Password)

	r := oidcLogin(t, ts, p, "bob")
	apptest.WantStatus(t, r, http.StatusConflict)
	if r.ErrorCode(t) != "conflict" {
		t.Fatalf("got %s, want code conflict", r.Body)
	}
	m := r.JSON(t)
	link, _ := m["link_token"].(string)
	if link == "" || m["expires_at"] == nil || strings.Contains(string(r.Body), bob) {
		t.Fatalf("got %s, want a link token and its expiry, and not the account's id", r.Body)
	}
	// The identity logs in as nobody until the link is confirmed.
	apptest.WantStatus(t, oidcLogin(t, ts, p, "bob"), http.StatusConflict)

	wrong := ts.Do(t, "POST", "/oidc/link", `{"link_token":"`+link+`","password":"not the password at all"}`)
	apptest.WantStatus(t, wrong, http.StatusUnauthorized)
	badLogin := ts.Do(t, "POST", "/sessions", `{"email":"bob.oidc@example.com","password":"not the password at all"}`)
	if string(wrong.Body) != string(badLogin.Body) {
		t.Errorf("wrong password: got %s, want what a wrong login gets: %s", wrong.Body, badLogin.Body)
	}
	apptest.WantStatus(t, ts.Do(t, "POST", "/oidc/link", `{"link_token":"forged","password":"`+apptest.Password+`"}`),
		http.StatusUnauthorized)
	apptest.WantStatus(t, ts.Do(t, "POST", "/oidc/link", `{"link_token":"`+link+`","password":"`+apptest.Password+`","x":1}`),
		http.StatusBadRequest)

	token, got := session(t, ts.Do(t, "POST", "/oidc/link", `{"link_token":"`+link+`","password":"`+apptest.Password+`"}`))
	if got != bob {
		t.Fatalf("link: got user %s, want bob %s", got, bob)
	}
	apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...), http.StatusOK)
	again := ts.Do(t, "POST", "/oidc/link", `{"link_token":"`+link+`","password":"`+apptest.Password+`"}`)
	apptest.WantStatus(t, again, http.StatusConflict)

	_, viaProvider := session(t, oidcLogin(t, ts, p, "bob"))
	if viaProvider != bob {
		t.Errorf("login through the provider after the link: got %s, want bob %s", viaProvider, bob)
	}
	// The password still works too.
	ts.Login(t, "bob.oidc@example.com", apptest.Password)
}

// TestOIDC_LinkThrottled: wrong passwords to a link count as failed
// logins of the address: past the budget even the right one waits.
func TestOIDC_LinkThrottled(t *testing.T) {
	t.Parallel()
	ts, p := oidcServer(t, nil)
	ts.Register(t, "bob.oidc@example.com", apptest.Password)
	r := oidcLogin(t, ts, p, "bob")
	apptest.WantStatus(t, r, http.StatusConflict)
	link, _ := r.JSON(t)["link_token"].(string)
	var last apptest.Response
	for range 30 {
		last = ts.Do(t, "POST", "/oidc/link", `{"link_token":"`+link+`","password":"wrong wrong wrong wrong"}`)
		if last.Status == http.StatusTooManyRequests {
			break
		}
		apptest.WantStatus(t, last, http.StatusUnauthorized)
	}
	apptest.WantStatus(t, last, http.StatusTooManyRequests)
	apptest.WantStatus(t, ts.Do(t, "POST", "/oidc/link", `{"link_token":"`+link+`","password":"`+apptest.Password+`"}`),
		http.StatusTooManyRequests)
}

// TestOIDC_ErasureFreesTheIdentity: once its user is erased, the identity
// and the address are free: the next login through the provider creates
// a new user, and nothing of the old one opens.
func TestOIDC_ErasureFreesTheIdentity(t *testing.T) {
	t.Parallel()
	ts, p := oidcServer(t, nil)
	root := ts.RootAdmin(t)
	_, alice := session(t, oidcLogin(t, ts, p, "alice"))
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/users/"+alice+"/erase", `{"reason":"asked"}`), http.StatusOK)
	token, fresh := session(t, oidcLogin(t, ts, p, "alice"))
	if fresh == alice {
		t.Fatalf("login after the erasure: got the erased user %s, want a new one", alice)
	}
	apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...), http.StatusOK)
	u, err := ts.Service().UserByID(context.Background(), alice)
	if err != nil || !u.Erased || u.Email != "" {
		t.Errorf("erased user: got %+v, %v, want erased, no email", u, err)
	}
}

// TestOIDC_Registration: closed registration refuses a first login (an
// existing account still links); invite creates accounts only for the
// allowed domains.
func TestOIDC_Registration(t *testing.T) {
	t.Parallel()
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		ts, p := oidcServer(t, func(c *app.ServeConfig) { c.SignUp.Registration = "closed" })
		r := oidcLogin(t, ts, p, "alice")
		apptest.WantStatus(t, r, http.StatusForbidden)
		ts.CreateUser(t, "bob.oidc@example.com", false)
		apptest.WantStatus(t, oidcLogin(t, ts, p, "bob"), http.StatusConflict)
	})
	t.Run("InviteWithoutDomains", func(t *testing.T) {
		t.Parallel()
		ts, p := oidcServer(t, func(c *app.ServeConfig) {
			c.SignUp.Registration = "invite"
			c.OIDC.AllowedDomains = nil
		})
		apptest.WantStatus(t, oidcLogin(t, ts, p, "alice"), http.StatusForbidden)
	})
	t.Run("InviteWithDomains", func(t *testing.T) {
		t.Parallel()
		ts, p := oidcServer(t, func(c *app.ServeConfig) { c.SignUp.Registration = "invite" })
		session(t, oidcLogin(t, ts, p, "alice"))
	})
}

// TestOIDC_NotConfigured: without a provider the routes answer 404.
func TestOIDC_NotConfigured(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	for _, r := range []apptest.Response{
		ts.Do(t, "GET", "/oidc/login", ""),
		ts.Do(t, "GET", "/oidc/callback?code=c&state=s", ""),
		ts.Do(t, "POST", "/oidc/link", `{"link_token":"t","password":"p"}`),
	} {
		apptest.WantStatus(t, r, http.StatusNotFound)
	}
}

// TestOIDC_ConfigErrors: a partial or broken configuration stops serve at
// start with a configuration error.
func TestOIDC_ConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]app.OIDCConfig{
		"issuer only":         {Issuer: "https://id.example.com"},
		"no secret file":      {Issuer: "https://id.example.com", ClientID: "c"},
		"missing secret file": {Issuer: "https://id.example.com", ClientID: "c", ClientSecretFile: filepath.Join(dir, "nope")},
		"empty secret file":   {Issuer: "https://id.example.com", ClientID: "c", ClientSecretFile: empty},
		"domains alone":       {AllowedDomains: []string{"example.com"}},
		"bad issuer":          {Issuer: "id.example.com", ClientID: "c", ClientSecretFile: secret},
		// The default redirect URL needs an address browsers can reach.
		"no redirect URL": {Issuer: "https://id.example.com", ClientID: "c", ClientSecretFile: secret},
	} {
		s := &app.Server{Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			MetricsAddr: "", CheckpointInterval: -1, OIDC: o}}
		err := s.Open(context.Background())
		if err == nil {
			_ = s.Close(context.Background())
		}
		var ce app.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want a configuration error", name, err)
		}
	}
}

// TestClient_LinkOIDC: the Go client completes a link and its session
// works; a wrong password is a 401 *client.Error.
func TestClient_LinkOIDC(t *testing.T) {
	t.Parallel()
	ts, p := oidcServer(t, nil)
	ts.Register(t, "bob.oidc@example.com", apptest.Password)
	r := oidcLogin(t, ts, p, "bob")
	apptest.WantStatus(t, r, http.StatusConflict)
	link, _ := r.JSON(t)["link_token"].(string)
	c, err := client.New(ts.Base)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.OIDCLoginURL(); got != ts.Base+"/oidc/login" {
		t.Errorf("OIDCLoginURL: got %s, want %s/oidc/login", got, ts.Base)
	}
	ctx := context.Background()
	var ce *client.Error
	if _, err := c.LinkOIDC(ctx, link, "wrong wrong wrong wrong"); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: got %v, want a 401 *client.Error", err)
	}
	s, err := c.LinkOIDC(ctx, link, apptest.Password)
	if err != nil || s.Token == "" || !strings.HasPrefix(s.UserID, "usr_") {
		t.Fatalf("LinkOIDC: got %+v, %v, want a session", s, err)
	}
	if _, err := c.WithSession(s.Token).ListKeys(ctx, client.ListOptions{}); err != nil {
		t.Errorf("ListKeys with the linked session: %v", err)
	}
}

// TestOIDC_CallbackThrottled: refused callbacks count as failed logins of
// the client's address; past --login-failures-per-address the callback
// answers 429 without asking the provider, and a good login from that
// address waits too.
func TestOIDC_CallbackThrottled(t *testing.T) {
	t.Parallel()
	ts, p := oidcServer(t, func(c *app.ServeConfig) { c.Limits.LoginFailures = 3 })
	loc, cookie := startLogin(t, ts)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	state := url.QueryEscape(u.Query().Get("state"))
	for i := range 3 {
		back, _ := url.Parse(ts.Base + "/oidc/callback?code=made-up-" + string(rune('a'+i)) + "&state=" + state)
		apptest.WantStatus(t, callback(t, back, cookie), http.StatusUnauthorized)
	}
	back, _ := url.Parse(ts.Base + "/oidc/callback?code=made-up-d&state=" + state)
	r := callback(t, back, cookie)
	apptest.WantStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	apptest.WantStatus(t, oidcLogin(t, ts, p, "alice"), http.StatusTooManyRequests)
}
