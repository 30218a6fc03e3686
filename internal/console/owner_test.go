package console_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/mailtest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

var (
	secretOnPage = regexp.MustCompile(`<code id="secret">([^<]+)</code>`)
	keyOnPage    = regexp.MustCompile(`<code id="api-key">([^<]+)</code>`)
)

// secretPage reads the key and the secret off a secret page, and checks
// the page is one no cache keeps.
func secretPage(t *testing.T, p page) (key, secret string) {
	t.Helper()
	s, k := secretOnPage.FindStringSubmatch(p.body), keyOnPage.FindStringSubmatch(p.body)
	if s == nil || k == nil {
		t.Fatalf("no key and secret on the page (status %d): %s", p.status, p.body)
	}
	if got := p.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("secret page: Cache-Control = %q, want no-store", got)
	}
	if loc := p.header.Get("Location"); loc != "" {
		t.Errorf("secret page redirects to %q: the secret must be in this answer only", loc)
	}
	if !strings.Contains(p.body, "shown this once") {
		t.Error("secret page: no warning that the secret is shown once")
	}
	return k[1], s[1]
}

// validates reports whether the API's /validate accepts the key with
// secret and scopes.
func validates(t *testing.T, ts *apptest.Server, key, secret string, scopes ...string) bool {
	t.Helper()
	cl, err := client.New(ts.Base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cl.ValidateScopes(ctx, key, secret, client.StyleAPIKeyHeaders, scopes...)
	return err == nil
}

func TestConsole_OwnerFlow(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	b := newBrowser(t, ts.Base, nil)
	b.signUpAndLogIn("owner@example.com", password)

	if p := b.get("/console/keys"); p.status != http.StatusOK || !strings.Contains(p.body, "no keys yet") {
		t.Fatalf("empty key list: got %d: %s", p.status, p.body)
	}
	tok := b.get("/console/keys/new").csrf(t)
	p := b.post("/console/keys", url.Values{"csrf": {tok}, "name": {"billing"}, "scopes": {"orders:read, orders:write"},
		"metadata": {`{"team":"billing"}`}, "expires_at": {"2099-01-02T03:04"}, "rate_limit": {"100"}, "rate_window": {"1m"},
		"credits": {"1000"}})
	if p.status != http.StatusCreated {
		t.Fatalf("create: got %d, want 201: %s", p.status, p.body)
	}
	key, secret := secretPage(t, p)
	if !validates(t, ts, key, secret, "orders:read") {
		t.Fatal("the new key does not validate with its scope")
	}
	if validates(t, ts, key, secret, "admin") {
		t.Error("the new key validates for a scope it was not given")
	}
	if l := b.get("/console/keys"); !strings.Contains(l.body, key) || !strings.Contains(l.body, "billing") ||
		!strings.Contains(l.body, "100 per 1m") || !strings.Contains(l.body, "2099-01-02 03:04 UTC") || strings.Contains(l.body, secret) {
		t.Errorf("key list: want the key, its name, limits and expiry, and never its secret: %s", l.body)
	}
	kp := b.get("/console/keys/" + key)
	if kp.status != http.StatusOK || strings.Contains(kp.body, secret) {
		t.Fatalf("key page: got %d (or it shows the secret): %s", kp.status, kp.body)
	}
	tok = kp.csrf(t)
	version := regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(kp.body)[1]

	// Edit: the name and scopes change; a stale version is refused.
	edit := url.Values{"csrf": {tok}, "version": {version}, "name": {"billing-2"}, "scopes": {"orders:read"},
		"metadata": {`{"team":"billing"}`}, "rate_limit": {"100"}, "rate_window": {"1m"}}
	if p := b.post("/console/keys/"+key+"/edit", edit); p.status != http.StatusOK || !strings.Contains(p.body, "billing-2") {
		t.Fatalf("edit: got %d: %s", p.status, p.body)
	}
	if p := b.post("/console/keys/"+key+"/edit", edit); p.status != http.StatusPreconditionFailed {
		t.Errorf("edit with a stale version: got %d, want 412", p.status)
	}
	if validates(t, ts, key, secret, "orders:write") {
		t.Error("the key still validates for a scope the edit removed")
	}

	// Rotate with an hour's grace: both secrets validate.
	p = b.post("/console/keys/"+key+"/rotate", url.Values{"csrf": {tok}, "grace": {"1h"}})
	if p.status != http.StatusOK {
		t.Fatalf("rotate: got %d: %s", p.status, p.body)
	}
	_, secret2 := secretPage(t, p)
	if secret2 == secret || !validates(t, ts, key, secret2) || !validates(t, ts, key, secret) {
		t.Fatal("after a rotation with grace, want a new secret and both to validate")
	}
	if !strings.Contains(p.body, "still validates until") {
		t.Error("rotation page: does not say until when the previous secret validates")
	}
	if p := b.post("/console/keys/"+key+"/rotate", url.Values{"csrf": {tok}, "grace": {"9999h"}}); p.status != http.StatusBadRequest {
		t.Errorf("rotate with a grace not offered: got %d, want 400", p.status)
	}

	// Disable, enable.
	if p := b.post("/console/keys/"+key+"/disable", url.Values{"csrf": {tok}, "reason": {"incident"}}); p.status != http.StatusOK ||
		!strings.Contains(p.body, `id="status">disabled<`) {
		t.Fatalf("disable: got %d: %s", p.status, p.body)
	}
	if validates(t, ts, key, secret2) {
		t.Error("a disabled key validates")
	}
	if p := b.post("/console/keys/"+key+"/enable", url.Values{"csrf": {tok}}); p.status != http.StatusOK {
		t.Fatalf("enable: got %d: %s", p.status, p.body)
	}
	if !validates(t, ts, key, secret2) {
		t.Error("an enabled key does not validate")
	}

	// Revoke: the confirmation page first; unconfirmed is refused.
	if p := b.get("/console/keys/" + key + "/revoke"); p.status != http.StatusOK || !strings.Contains(p.body, `name="confirm"`) {
		t.Fatalf("revoke page: got %d: %s", p.status, p.body)
	}
	if p := b.post("/console/keys/"+key+"/revoke", url.Values{"csrf": {tok}}); p.status != http.StatusBadRequest {
		t.Errorf("revoke without confirmation: got %d, want 400", p.status)
	}
	if !validates(t, ts, key, secret2) {
		t.Fatal("an unconfirmed revocation took effect")
	}
	if p := b.post("/console/keys/"+key+"/revoke", url.Values{"csrf": {tok}, "confirm": {"yes"}}); p.status != http.StatusOK ||
		!strings.Contains(p.body, `id="status">revoked<`) {
		t.Fatalf("revoke: got %d: %s", p.status, p.body)
	}
	if validates(t, ts, key, secret2) || validates(t, ts, key, secret) {
		t.Error("a revoked key validates")
	}

	// The history lists every change, newest first, from the log.
	h := b.get("/console/keys/" + key + "/history")
	if h.status != http.StatusOK {
		t.Fatalf("history: got %d: %s", h.status, h.body)
	}
	last := -1
	for _, want := range []string{"key.revoked", "key.enabled", "key.disabled", "key.secret_regenerated", "key.renamed", "key.created"} {
		i := strings.Index(h.body, "<code>"+want+"</code>")
		if i < 0 || i < last {
			t.Errorf("history: %s missing or out of order", want)
		}
		last = i
	}
	if !strings.Contains(h.body, "reason: &#34;incident&#34;") || !strings.Contains(h.body, "name: &#34;billing-2&#34;") {
		t.Errorf("history does not say what changed: %s", h.body)
	}
	if strings.Contains(h.body, "secret_hash") || strings.Contains(h.body, "secret hash") || strings.Contains(h.body, secret) {
		t.Error("history shows a secret or its digest")
	}
}

// TestConsole_OthersKeys: a user sees and changes only their own keys;
// another's key is a 404, as in the API, and stays as it was.
func TestConsole_OthersKeys(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	alice := newBrowser(t, ts.Base, nil)
	alice.signUpAndLogIn("alice@example.com", password)
	p := alice.post("/console/keys", url.Values{"csrf": {alice.get("/console/keys/new").csrf(t)}, "name": {"alice's"}})
	key, secret := secretPage(t, p)

	mallory := newBrowser(t, ts.Base, nil)
	mallory.signUpAndLogIn("mallory@example.com", password)
	tok := mallory.get("/console/keys").csrf(t)
	if p := mallory.get("/console/keys/" + key); p.status != http.StatusNotFound || strings.Contains(p.body, "alice's") {
		t.Errorf("another's key page: got %d, want 404 without its details", p.status)
	}
	if p := mallory.get("/console/keys/" + key + "/history"); p.status != http.StatusNotFound || strings.Contains(p.body, "key.created") {
		t.Errorf("another's key history: got %d, want 404 without events", p.status)
	}
	if p := mallory.get("/console/keys/" + key + "/revoke"); p.status != http.StatusNotFound {
		t.Errorf("another's key revoke page: got %d, want 404", p.status)
	}
	for _, action := range []string{"revoke", "disable", "rotate", "edit"} {
		form := url.Values{"csrf": {tok}, "confirm": {"yes"}, "grace": {"0s"}, "version": {"1"}, "name": {"taken"}}
		if p := mallory.post("/console/keys/"+key+"/"+action, form); p.status != http.StatusNotFound {
			t.Errorf("%s another's key: got %d, want 404", action, p.status)
		}
	}
	if !validates(t, ts, key, secret) {
		t.Error("alice's key no longer validates after mallory's attempts")
	}
	if l := mallory.get("/console/keys"); strings.Contains(l.body, key) {
		t.Error("mallory's key list shows alice's key")
	}
}

// TestConsole_BadInput: what a form cannot hold is a 400 with a clear
// message, never a 500, and creates nothing.
func TestConsole_BadInput(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	b := newBrowser(t, ts.Base, nil)
	b.signUpAndLogIn("bad@example.com", password)
	tok := b.get("/console/keys/new").csrf(t)
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"Metadata", url.Values{"metadata": {"{not json"}}, "metadata must be a JSON object"},
		{"MetadataArray", url.Values{"metadata": {"[1]"}}, "metadata must be a JSON object"},
		{"Expiry", url.Values{"expires_at": {"tomorrow"}}, "expiry must be a date"},
		{"RateLimit", url.Values{"rate_limit": {"lots"}}, "rate limit must be a whole number"},
		{"RateWindow", url.Values{"rate_limit": {"10"}, "rate_window": {"1y"}}, "window"},
		{"Credits", url.Values{"credits": {"-1"}}, "credits must be a whole number"},
		{"Scope", url.Values{"scopes": {"bad scope\x00"}}, "scope"},
		{"Name", url.Values{"name": {strings.Repeat("n", 500)}}, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", tok)
			p := b.post("/console/keys", tc.form)
			if p.status != http.StatusBadRequest || !strings.Contains(p.body, tc.want) || !strings.Contains(p.body, `role="alert"`) {
				t.Errorf("got %d, want 400 saying %q: %s", p.status, tc.want, p.body)
			}
		})
	}
	if keys, err := listKeys(t, ts, b); err != nil || len(keys) != 0 {
		t.Errorf("bad forms created %d keys (%v), want 0", len(keys), err)
	}
	big := url.Values{"csrf": {tok}, "name": {strings.Repeat("x", 70<<10)}}
	if p := b.post("/console/keys", big); p.status/100 != 4 {
		t.Errorf("a form over the size cap: got %d, want 4xx", p.status)
	}
}

func TestConsole_Account(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	b := newBrowser(t, ts.Base, nil)
	b.signUpAndLogIn("acct@example.com", password)
	key, secret := secretPage(t, b.post("/console/keys", url.Values{"csrf": {b.get("/console/keys/new").csrf(t)}}))
	tok := b.get("/console/account").csrf(t)
	const newPassword = "another horse battery staple 43"
	if p := b.post("/console/account/password", url.Values{"csrf": {tok}, "current_password": {"wrong password 1234"},
		"new_password": {newPassword}, "new_password_again": {newPassword}}); p.status != http.StatusForbidden {
		t.Errorf("change password with a wrong current one: got %d, want 403", p.status)
	}
	p := b.post("/console/account/password", url.Values{"csrf": {tok}, "current_password": {password},
		"new_password": {newPassword}, "new_password_again": {newPassword}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "log in again") {
		t.Fatalf("change password: got %d: %s", p.status, p.body)
	}
	if p := b.get("/console/keys"); p.status != http.StatusSeeOther {
		t.Errorf("keys after a password change: got %d, want 303 to log in", p.status)
	}
	login := b.get("/console/login")
	if p := b.post("/console/login", url.Values{"csrf": {login.csrf(t)}, "email": {"acct@example.com"}, "password": {password}}); p.status != http.StatusUnauthorized {
		t.Errorf("log in with the old password: got %d, want 401", p.status)
	}
	if p := b.post("/console/login", url.Values{"csrf": {login.csrf(t)}, "email": {"acct@example.com"}, "password": {newPassword}}); p.status != http.StatusSeeOther {
		t.Fatalf("log in with the new password: got %d: %s", p.status, p.body)
	}
	tok = b.get("/console/account").csrf(t)
	if p := b.post("/console/account/erase", url.Values{"csrf": {tok}, "password": {newPassword}}); p.status != http.StatusBadRequest {
		t.Errorf("erase without confirmation: got %d, want 400", p.status)
	}
	if p := b.post("/console/account/erase", url.Values{"csrf": {tok}, "password": {"wrong password 1234"}, "confirm": {"yes"}}); p.status != http.StatusForbidden {
		t.Errorf("erase with a wrong password: got %d, want 403", p.status)
	}
	if !validates(t, ts, key, secret) {
		t.Fatal("an unconfirmed erasure revoked the key")
	}
	if p := b.post("/console/account/erase", url.Values{"csrf": {tok}, "password": {newPassword}, "confirm": {"yes"}}); p.status != http.StatusOK {
		t.Fatalf("erase: got %d: %s", p.status, p.body)
	}
	if validates(t, ts, key, secret) {
		t.Error("a key of an erased account validates")
	}
}

// TestConsole_SignUpVerified: in verified mode the console says to check
// the mail, and the mailed link's page confirms the address on a click.
func TestConsole_SignUpVerified(t *testing.T) {
	ms := mailtest.Start(t, mailtest.Options{})
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.SignUp = app.SignUpConfig{Registration: "verified", SMTPURL: "smtp://" + ms.SMTPAddr,
			SMTPFrom: "keyledger@example.com", PublicURL: "http://127.0.0.1:8080"}
	})
	defer ts.Stop(t)
	b := newBrowser(t, ts.Base, nil)
	p := b.post("/console/signup", url.Values{"csrf": {b.get("/console/signup").csrf(t)}, "email": {"new@example.com"}, "password": {password}})
	if p.status != http.StatusAccepted || !strings.Contains(p.body, "Check your mail") {
		t.Fatalf("verified sign-up: got %d: %s", p.status, p.body)
	}
	link := regexp.MustCompile(`http://127\.0\.0\.1:8080(/verify\?token=[^\s]+)`).FindStringSubmatch(ms.Await(t, "new@example.com", 1)[0].Text)
	if link == nil {
		t.Fatal("no console link in the mail")
	}
	if !strings.Contains(p.body, `action="/console/verify/resend"`) {
		t.Error("the check-your-mail page offers no way to get another link")
	}
	login := b.get("/console/login")
	if p := b.post("/console/login", url.Values{"csrf": {login.csrf(t)}, "email": {"new@example.com"}, "password": {password}}); p.status != http.StatusForbidden {
		t.Errorf("log in before verification: got %d, want 403", p.status)
	}
	r := b.get(link[1])
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/verify?token=") {
		t.Fatalf("the mail's link: got %d to %q, want 303 to the console's page", r.status, r.header.Get("Location"))
	}
	v := b.get(r.header.Get("Location"))
	if v.status != http.StatusOK {
		t.Fatalf("verify page: got %d", v.status)
	}
	form := url.Values{"csrf": {v.csrf(t)}}
	form.Set("token", regexp.MustCompile(`name="token"[^>]*value="([^"]+)"`).FindStringSubmatch(v.body)[1])
	if p := b.post("/console/verify", form); p.status != http.StatusOK || !strings.Contains(p.body, "confirmed") {
		t.Fatalf("verify: got %d: %s", p.status, p.body)
	}
	if p := b.post("/console/login", url.Values{"csrf": {login.csrf(t)}, "email": {"new@example.com"}, "password": {password}}); p.status != http.StatusSeeOther {
		t.Errorf("log in after verification: got %d, want 303", p.status)
	}
	// Asking for another link answers alike for any address.
	fresh := newBrowser(t, ts.Base, nil)
	tok := fresh.get("/console/verify").csrf(t)
	var bodies []string
	for _, email := range []string{"new@example.com", "nobody@example.com"} {
		p := fresh.post("/console/verify/resend", url.Values{"csrf": {tok}, "email": {email}})
		if p.status != http.StatusAccepted || !strings.Contains(p.body, "new link is on its way") {
			t.Errorf("resend for %s: got %d: %s", email, p.status, p.body)
		}
		bodies = append(bodies, strings.ReplaceAll(p.body, email, ""))
	}
	if bodies[0] != bodies[1] {
		t.Error("resend answers differ between a registered address and an unknown one")
	}
}

// TestConsole_SharesAPILimits: the console's logins count against the
// browser's address exactly as the API's do, and a forged
// X-Forwarded-For (no proxy is trusted) gets no fresh budget.
func TestConsole_SharesAPILimits(t *testing.T) {
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.Limits.LoginFailures = 3 })
	defer ts.Stop(t)
	b := newBrowser(t, ts.Base, nil)
	tok := b.get("/console/login").csrf(t)
	wrong := url.Values{"csrf": {tok}, "email": {"nobody@example.com"}, "password": {"wrong password 1234"}}
	for i := range 3 {
		if p := b.post("/console/login", wrong); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong login %d: got %d, want 401", i+1, p.status)
		}
	}
	p := b.post("/console/login", wrong)
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("login over the budget: got %d, Retry-After %q, want 429 with one", p.status, p.header.Get("Retry-After"))
	}
	if p := b.post("/console/login", wrong, "X-Forwarded-For", "203.0.113.9"); p.status != http.StatusTooManyRequests {
		t.Errorf("login with a forged X-Forwarded-For: got %d, want 429", p.status)
	}
	// The API sees the same address's budget spent.
	if r := ts.Do(t, "POST", "/sessions", `{"email":"nobody@example.com","password":"wrong password 1234"}`); r.Status != http.StatusTooManyRequests {
		t.Errorf("API login from the same address: got %d, want 429", r.Status)
	}
}

// TestConsole_Usage: the usage page charts what a validation node
// counted, valid and refused, from the API's usage route.
func TestConsole_Usage(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	b := newBrowser(t, ts.Base, nil)
	b.signUpAndLogIn("usage@example.com", password)
	key, secret := secretPage(t, b.post("/console/keys", url.Values{"csrf": {b.get("/console/keys/new").csrf(t)}}))
	node := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0", Fleet: app.FleetConfig{NodeName: "usage-node"},
		UsageInterval: time.Hour, NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)}}}
	ctx := context.Background()
	if err := node.Open(ctx); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, time.Minute, func() bool { return node.Validator().Status().Ready }, "node ready")
	for range 3 {
		if _, err := node.Validator().Validate(ctx, key, secret); err != nil {
			t.Fatalf("validate: %v", err)
		}
	}
	wrong, err := domain.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := node.Validator().Validate(ctx, key, wrong.Reveal()); err == nil {
			t.Fatal("a wrong secret validates")
		}
	}
	// A closing node publishes its last interval.
	if err := node.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := `Last 24 hours, by hour: <span class="total">3 valid</span>, 2 refused`
	var last page
	natstest.Eventually(t, time.Minute, func() bool {
		last = b.get("/console/keys/" + key + "/usage")
		return last.status == http.StatusOK && strings.Contains(last.body, want)
	}, "the usage page counts 3 valid and 2 refused")
	if !strings.Contains(last.body, `Last 30 days, by day: <span class="total">3 valid</span>, 2 refused`) || !strings.Contains(last.body, "<svg") {
		t.Errorf("usage page: want the 30-day chart with the same counts: %s", last.body)
	}
	other := newBrowser(t, ts.Base, nil)
	other.signUpAndLogIn("other@example.com", password)
	if p := other.get("/console/keys/" + key + "/usage"); p.status != http.StatusNotFound {
		t.Errorf("another's key usage: got %d, want 404", p.status)
	}
}
