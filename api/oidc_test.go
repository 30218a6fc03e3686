package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/oidc/oidctest"
)

// oidcWalkThrough checks the OpenID Connect routes against the document,
// with serve logging in through a real provider.
func oidcWalkThrough(t *testing.T, d *openAPIDoc) {
	addr := apptest.FreeAddr(t)
	p := oidctest.Start(t, "http://"+addr+"/oidc/callback",
		oidctest.User{ID: "sub-olga", Username: "olga", Password: "pw", Email: "olga@example.com", EmailVerified: true},
		oidctest.User{ID: "sub-paul", Username: "paul", Password: "pw", Email: "paul@example.com", EmailVerified: true},
		oidctest.User{ID: "sub-uma", Username: "uma", Password: "pw", Email: "uma@example.com"})
	dir := t.TempDir()
	secret := filepath.Join(dir, "oidc-secret")
	if err := os.WriteFile(secret, []byte(oidctest.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := apptest.StartWith(t, dir, func(c *app.ServeConfig) {
		c.HTTPAddr = addr
		c.SignUp.Registration = "open"
		c.OIDC = app.OIDCConfig{Issuer: p.Issuer, ClientID: oidctest.ClientID, ClientSecretFile: secret}
	})
	defer ts.Stop(t)
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(docPath, url string, cookie *http.Cookie) apptest.Response {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		r := apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b.Bytes()}
		d.check(t, "GET", docPath, r)
		return r
	}
	login := func(username string) apptest.Response {
		t.Helper()
		r := get("/oidc/login", ts.Base+"/oidc/login", nil)
		apptest.WantStatus(t, r, http.StatusFound)
		var cookie *http.Cookie
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "keyledger_oidc" {
				cookie = c
			}
		}
		back := p.Authorize(t, r.Header.Get("Location"), username, "pw")
		return get("/oidc/callback", back.String(), cookie)
	}
	r := login("olga")
	apptest.WantStatus(t, r, http.StatusOK)
	golden(t, "oidc_session", maskTokens(t, r.Body))
	apptest.WantStatus(t, login("uma"), http.StatusForbidden)
	apptest.WantStatus(t, get("/oidc/callback", ts.Base+"/oidc/callback?code=c&state=s", nil), http.StatusUnauthorized)

	ts.Register(t, "paul@example.com", apptest.Password)
	r = login("paul")
	apptest.WantStatus(t, r, http.StatusConflict)
	golden(t, "oidc_link_required", maskTokens(t, r.Body))
	link, _ := r.JSON(t)["link_token"].(string)
	do := func(body string, want int) apptest.Response {
		t.Helper()
		r := ts.Do(t, "POST", "/oidc/link", body)
		d.check(t, "POST", "/oidc/link", r)
		apptest.WantStatus(t, r, want)
		return r
	}
	do(`{"link_token":"`+link+`"`, http.StatusBadRequest)
	do(`{"link_token":"`+link+`","password":"wrong wrong wrong wrong"}`, http.StatusUnauthorized)
	golden(t, "oidc_link", maskTokens(t, do(`{"link_token":"`+link+`","password":"`+apptest.Password+`"}`, http.StatusOK).Body))
	do(`{"link_token":"`+link+`","password":"`+apptest.Password+`"}`, http.StatusConflict)
}

// maskTokens replaces the session and link tokens of a body, which
// change with every run, for golden.
func maskTokens(t *testing.T, body []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a JSON object: %s", body)
	}
	for _, k := range []string{"token", "link_token"} {
		if v, ok := m[k].(string); ok && v != "" {
			m[k] = strings.ToUpper(k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
