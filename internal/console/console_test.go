package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/console"
)

// browser is an HTTP client that keeps cookies like a browser and does
// not follow redirects, so tests see every answer.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, base string, rt http.RoundTripper) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, Transport: rt, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer, read whole.
type page struct {
	status int
	header http.Header
	body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the form token of the page.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf field on the page (status %d): %s", p.status, p.body)
	}
	return m[1]
}

func (b *browser) do(method, path string, form url.Values, headers ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(out)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do(http.MethodGet, path, nil) }

// post sends a form the way the console's own page would: same origin,
// with the page's token.
func (b *browser) post(path string, form url.Values, headers ...string) page {
	b.t.Helper()
	return b.do(http.MethodPost, path, form, append([]string{"Origin", b.base, "Sec-Fetch-Site", "same-origin"}, headers...)...)
}

// signUpAndLogIn registers email and logs the browser in.
func (b *browser) signUpAndLogIn(email, password string) {
	b.t.Helper()
	p := b.get("/console/signup")
	if got := b.post("/console/signup", url.Values{"csrf": {p.csrf(b.t)}, "email": {email}, "password": {password}}); got.status != http.StatusCreated {
		b.t.Fatalf("sign up: got %d, want 201: %s", got.status, got.body)
	}
	p = b.get("/console/login")
	got := b.post("/console/login", url.Values{"csrf": {p.csrf(b.t)}, "email": {email}, "password": {password}})
	if got.status != http.StatusSeeOther || got.header.Get("Location") != "/console/keys" {
		b.t.Fatalf("log in: got %d to %q, want 303 to /console/keys: %s", got.status, got.header.Get("Location"), got.body)
	}
}

const password = "correct horse battery staple 42"

func TestConsole_Headers(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	b := newBrowser(t, ts.Base, nil)
	for _, path := range []string{"/console/login", "/console/signup", "/console/no-such-page", "/console/static/console.css"} {
		p := b.get(path)
		for _, h := range [][2]string{
			{"Content-Security-Policy", console.ContentSecurityPolicy},
			{"X-Frame-Options", "DENY"},
			{"Referrer-Policy", "no-referrer"},
			{"X-Content-Type-Options", "nosniff"},
		} {
			if got := p.header.Get(h[0]); got != h[1] {
				t.Errorf("%s: %s = %q, want %q", path, h[0], got, h[1])
			}
		}
		csp := p.header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'self'", "style-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline code", path, csp)
		}
	}
	if p := b.get("/console/login"); p.header.Get("Cache-Control") != "no-store" {
		t.Errorf("login page: Cache-Control = %q, want no-store", p.header.Get("Cache-Control"))
	}
	// No page holds inline script or style, which the CSP would block.
	for _, path := range []string{"/console/login", "/console/signup"} {
		body := b.get(path).body
		for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", "javascript:"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s holds %q", path, bad)
			}
		}
	}
	if p := b.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/" {
		t.Errorf("GET /: got %d to %q, want 303 to /console/", p.status, p.header.Get("Location"))
	}
	// The API keeps every other path.
	if p := b.get("/healthz"); p.status != http.StatusOK {
		t.Errorf("GET /healthz: got %d, want 200", p.status)
	}
	if p := b.get("/nope"); p.status != http.StatusNotFound || !strings.Contains(p.body, `"not_found"`) {
		t.Errorf("GET /nope: got %d %s, want the API's JSON 404", p.status, p.body)
	}
}

func TestConsole_SessionCookie(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	b := newBrowser(t, ts.Base, nil)
	p := b.get("/console/signup")
	b.post("/console/signup", url.Values{"csrf": {p.csrf(t)}, "email": {"cookie@example.com"}, "password": {password}})
	p = b.get("/console/login")
	got := b.post("/console/login", url.Values{"csrf": {p.csrf(t)}, "email": {"cookie@example.com"}, "password": {password}})
	var session *http.Cookie
	for _, c := range (&http.Response{Header: got.header}).Cookies() {
		if c.Name == "kl_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("login set no kl_session cookie: %v", got.header["Set-Cookie"])
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure || session.Path != "/" {
		t.Errorf("session cookie: HttpOnly %v SameSite %v Secure %v Path %q, want HttpOnly, Strict, not Secure over http, /",
			session.HttpOnly, session.SameSite, session.Secure, session.Path)
	}
	// The cookie holds the API's session token: it works as a bearer.
	if r := ts.Do(t, "GET", "/api-keys", "", "Authorization", "Bearer "+session.Value); r.Status != http.StatusOK {
		t.Errorf("the cookie's token as a bearer: got %d, want 200", r.Status)
	}
	if strings.Contains(got.header.Get("Location"), session.Value) {
		t.Error("the session token is in a URL")
	}
	// Logging out ends the token everywhere, not only in this browser.
	p = b.get("/console/keys")
	if out := b.post("/console/logout", url.Values{"csrf": {p.csrf(t)}}); out.status != http.StatusOK {
		t.Fatalf("log out: got %d, want 200", out.status)
	}
	if r := ts.Do(t, "GET", "/api-keys", "", "Authorization", "Bearer "+session.Value); r.Status != http.StatusUnauthorized {
		t.Errorf("the token after logout: got %d, want 401", r.Status)
	}
	if p := b.get("/console/keys"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/login" {
		t.Errorf("keys after logout: got %d to %q, want 303 to the login page", p.status, p.header.Get("Location"))
	}
}

// TestConsole_SecureCookieUnderTLS: served over HTTPS, the console's
// cookies are Secure and __Host- prefixed, so neither a plain-HTTP page
// nor a sibling subdomain can set or read them.
func TestConsole_SecureCookieUnderTLS(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	target, err := url.Parse(ts.Base)
	if err != nil {
		t.Fatal(err)
	}
	// The real API, reached through a proxy; the console in front of it
	// is served over TLS.
	c, err := console.New(console.Config{API: httputil.NewSingleHostReverseProxy(target), TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(c)
	defer srv.Close()
	b := newBrowser(t, srv.URL, srv.Client().Transport)
	p := b.get("/console/login")
	if hsts := p.header.Get("Strict-Transport-Security"); hsts == "" {
		t.Error("no Strict-Transport-Security under TLS")
	}
	pre := cookieNamed(p.header, "__Host-kl_pre")
	if pre == nil || !pre.Secure || !pre.HttpOnly || pre.SameSite != http.SameSiteStrictMode {
		t.Fatalf("pre-session cookie under TLS: %+v, want __Host-kl_pre Secure HttpOnly Strict", pre)
	}
	sp := b.get("/console/signup")
	b.post("/console/signup", url.Values{"csrf": {sp.csrf(t)}, "email": {"tls@example.com"}, "password": {password}})
	got := b.post("/console/login", url.Values{"csrf": {p.csrf(t)}, "email": {"tls@example.com"}, "password": {password}})
	s := cookieNamed(got.header, "__Host-kl_session")
	if s == nil || !s.Secure || !s.HttpOnly || s.SameSite != http.SameSiteStrictMode || s.Path != "/" {
		t.Fatalf("session cookie under TLS: %+v (status %d), want __Host-kl_session Secure HttpOnly Strict /", s, got.status)
	}
}

func cookieNamed(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestConsole_CSRF: a state-changing form is refused unless it carries
// the token bound to this browser's cookie and, where the browser tells,
// comes from the console's own origin.
func TestConsole_CSRF(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	victim := newBrowser(t, ts.Base, nil)
	victim.signUpAndLogIn("victim@example.com", password)
	token := victim.get("/console/keys/new").csrf(t)
	create := func(extra url.Values) url.Values {
		v := url.Values{"name": {"planted"}, "scopes": {"*"}}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	attacker := newBrowser(t, ts.Base, nil)
	attacker.signUpAndLogIn("attacker@example.com", password)
	attackerToken := attacker.get("/console/keys/new").csrf(t)

	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"NoToken", create(nil), []string{"Origin", ts.Base, "Sec-Fetch-Site", "same-origin"}},
		{"EmptyToken", create(url.Values{"csrf": {""}}), []string{"Origin", ts.Base, "Sec-Fetch-Site", "same-origin"}},
		{"OtherSessionsToken", create(url.Values{"csrf": {attackerToken}}), []string{"Origin", ts.Base, "Sec-Fetch-Site", "same-origin"}},
		{"CrossSite", create(url.Values{"csrf": {token}}), []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
		{"SameSiteOtherOrigin", create(url.Values{"csrf": {token}}), []string{"Sec-Fetch-Site", "same-site"}},
		{"ForeignOriginOnly", create(url.Values{"csrf": {token}}), []string{"Origin", "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := victim.do(http.MethodPost, "/console/keys", tc.form, tc.headers...)
			if got.status != http.StatusForbidden {
				t.Errorf("got %d, want 403: %s", got.status, got.body)
			}
		})
	}
	if pg, err := listKeys(t, ts, victim); err != nil || len(pg) != 0 {
		t.Fatalf("after refused forms the victim has %d keys (%v), want 0", len(pg), err)
	}
	// Login CSRF: the attacker cannot log a browser into their account
	// from their site either.
	fresh := newBrowser(t, ts.Base, nil)
	fresh.get("/console/login")
	got := fresh.do(http.MethodPost, "/console/login", url.Values{"csrf": {attackerToken}, "email": {"attacker@example.com"},
		"password": {password}}, "Sec-Fetch-Site", "cross-site")
	if got.status != http.StatusForbidden || cookieNamed(got.header, "kl_session") != nil {
		t.Errorf("cross-site login: got %d, set-cookie %v, want 403 and no session", got.status, got.header["Set-Cookie"])
	}
	// The real form goes through.
	if got := victim.post("/console/keys", create(url.Values{"csrf": {token}})); got.status != http.StatusCreated {
		t.Fatalf("the console's own form: got %d, want 201: %s", got.status, got.body)
	}
}

// listKeys lists the keys of the browser's user through the API, with
// the session token from its cookie.
func listKeys(t *testing.T, ts *apptest.Server, b *browser) ([]client.Key, error) {
	t.Helper()
	u, _ := url.Parse(ts.Base)
	var tok string
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == "kl_session" {
			tok = c.Value
		}
	}
	cl, err := client.New(ts.Base, client.WithToken(tok))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pg, err := cl.ListKeys(ctx, client.ListOptions{})
	return pg.Keys, err
}
