package console_test

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natstest"
)

// chromium finds Debian's chromium (or another Chromium build) on PATH.
// With CI set, a missing browser fails the test: CI installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found on PATH, and CI is set: install it (apt-get install -y chromium; .ci/run does)")
	}
	t.Skip("chromium not found on PATH (apt-get install -y chromium); CI is unset, so the browser tests are skipped")
	return ""
}

// cspWatch records, in every document the tab loads, the Content
// Security Policy violations the browser reports to the page.
const cspWatch = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});`

// tab is a headless Chromium tab that collects console errors and CSP
// violations.
type tab struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	log []string // console errors, exceptions and browser log errors
}

func newTab(t *testing.T) *tab {
	t.Helper()
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		// Chromium's sandbox refuses to run as root (a CI container).
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	tb := &tab{t: t, ctx: bctx}
	if _, err := chromedp.Call(bctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(bctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				tb.mu.Lock()
				tb.log = append(tb.log, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { bcancel(); <-done })
	return tb
}

// axeSource is axe-core, vendored (testdata/axe/README.md).
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// axeRun runs axe on the page and lists its serious and critical
// violations.
const axeRun = `axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
  return r.violations.filter(function (v) { return v.impact === "serious" || v.impact === "critical"; })
    .map(function (v) { return v.impact + " " + v.id + ": " + v.help + " (" + v.nodes.map(function (n) { return n.target.join(" "); }).join(", ") + ")"; });
})`

// accessible fails the test if axe-core finds a serious or critical
// accessibility violation on the current page.
func (tb *tab) accessible(where string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
		tb.t.Fatalf("%s: inject axe-core: %v", where, err)
	}
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: run axe-core: %v", where, err)
	}
	for _, s := range v {
		tb.t.Errorf("%s: accessibility: %s", where, s)
	}
}

// clean fails the test if the current page reported a CSP violation or
// the tab logged an error, or axe-core finds it inaccessible.
func (tb *tab) clean(where string) {
	tb.t.Helper()
	tb.accessible(where)
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`window.__cspViolations || []`))
	if err != nil {
		tb.t.Fatalf("%s: read CSP violations: %v", where, err)
	}
	if len(v) > 0 {
		tb.t.Errorf("%s: CSP violations: %v", where, v)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.log) > 0 {
		tb.t.Errorf("%s: console errors: %v", where, tb.log)
		tb.log = nil
	}
}

func (tb *tab) do(where string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", where, err)
	}
}

// submit clicks sel and waits for the page it loads; it returns the
// page's status.
func (tb *tab) submit(where, sel string) int64 {
	tb.t.Helper()
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("%s: %v", where, err)
	}
	tb.clean(where)
	return resp.Status
}

// shot writes screenshots of the current page, at a desktop's width and
// at 360 px, into $KEYLEDGER_CONSOLE_SCREENSHOTS (unset: none), as
// <name>-desktop.png and <name>-360.png. It also checks that the page
// needs no sideways scrolling at 360 px.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	dir := os.Getenv("KEYLEDGER_CONSOLE_SCREENSHOTS")
	for _, size := range []struct {
		suffix        string
		width, height int64
	}{{"360", 360, 740}, {"desktop", 1280, 800}} {
		tb.do("viewport "+size.suffix, chromedp.EmulateViewport(size.width, size.height))
		if size.width == 360 {
			over, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > 360`))
			if err != nil || over {
				tb.t.Errorf("%s: the page is wider than 360 px (%v)", name, err)
			}
		}
		if dir == "" {
			continue
		}
		png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			tb.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+size.suffix+".png"), png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (tb *tab) location() string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		tb.t.Fatal(err)
	}
	return s
}

// TestBrowser_OwnerWalkthrough plays a new user in headless Chromium:
// sign up, log in, create a scoped key, read its secret off the page, and
// check with /validate that it works; rotate with a grace period, revoke,
// and check that /validate refuses it. No page may report a CSP
// violation or a console error.
func TestBrowser_OwnerWalkthrough(t *testing.T) {
	tb := newTab(t)
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)

	tb.do("open /", chromedp.Navigate(ts.Base+"/"), chromedp.WaitVisible(chromedp.CSS(`form[action="/console/login"]`)))
	if loc := tb.location(); loc != ts.Base+"/console/login" {
		t.Fatalf("/ led to %s, want the login page", loc)
	}
	tb.clean("login page")
	tb.shot("login")
	tb.do("go to sign up", chromedp.Click(chromedp.CSS(`nav a[href="/console/signup"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/console/signup"]`)))
	tb.clean("sign-up page")
	tb.do("fill sign up", chromedp.SendKeys(chromedp.ID("email"), "walker@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), password))
	if st := tb.submit("sign up", `form[action="/console/signup"] button[type=submit]`); st != http.StatusCreated {
		t.Fatalf("sign up: status %d, want 201", st)
	}
	tb.do("fill log in", chromedp.SendKeys(chromedp.ID("password"), password))
	if got := tb.text("#notice"); !strings.Contains(got, "ready") {
		t.Errorf("after sign up: notice %q", got)
	}
	tb.submit("log in", `form[action="/console/login"] button[type=submit]`)
	if loc := tb.location(); loc != ts.Base+"/console/keys" {
		t.Fatalf("after log in at %s, want the key list", loc)
	}

	tb.do("new key", chromedp.Click(chromedp.CSS(`a[href="/console/keys/new"]`)), chromedp.WaitVisible(chromedp.ID("scopes")))
	tb.clean("new key page")
	tb.shot("new-key")
	tb.do("fill new key", chromedp.SendKeys(chromedp.ID("name"), "walkthrough"), chromedp.SendKeys(chromedp.ID("scopes"), "orders:read"))
	if st := tb.submit("create key", `form[action="/console/keys"] button[type=submit]`); st != http.StatusCreated {
		t.Fatalf("create key: status %d, want 201", st)
	}
	key, secret := tb.text("#api-key"), tb.text("#secret")
	if key == "" || secret == "" || strings.Contains(tb.location(), secret) {
		t.Fatalf("secret page: key %q, secret %q, at %s", key, secret, tb.location())
	}
	// JavaScript shows the copy button (the page works without it).
	tb.do("copy", chromedp.WaitVisible(chromedp.CSS(`button.copy`)), chromedp.Click(chromedp.CSS(`button.copy`)))
	copied, err := chromedp.Run(tb.ctx, chromedp.Poll[string](`document.getElementById("copied").textContent`))
	if err != nil || copied == "" {
		t.Errorf("copy button: status %q (%v), want a message", copied, err)
	}
	tb.clean("secret page")
	if !validates(t, ts, key, secret, "orders:read") {
		t.Fatal("the secret read off the page does not validate")
	}
	if validates(t, ts, key, secret, "orders:write") {
		t.Error("the key validates for a scope it was not given")
	}

	// Rotate with an hour's grace.
	tb.do("to the key", chromedp.Click(chromedp.CSS(`a[href="/console/keys/`+key+`"]`)), chromedp.WaitVisible(chromedp.ID("grace")))
	tb.clean("key page")
	tb.shot("key")
	tb.do("choose grace", chromedp.SetValue(chromedp.ID("grace"), "1h"))
	tb.submit("rotate", `form[action$="/rotate"] button[type=submit]`)
	secret2 := tb.text("#secret")
	if secret2 == secret || !validates(t, ts, key, secret2) || !validates(t, ts, key, secret) {
		t.Fatal("after rotating with grace, want a new secret and both to validate")
	}

	// Revoke, through the confirmation page.
	tb.do("to the key", chromedp.Click(chromedp.CSS(`a[href="/console/keys/`+key+`"]`)), chromedp.WaitVisible(chromedp.CSS(`a.danger`)))
	tb.do("revoke page", chromedp.Click(chromedp.CSS(`a.danger`)), chromedp.WaitVisible(chromedp.ID("confirm")))
	tb.clean("revoke page")
	tb.do("confirm", chromedp.Click(chromedp.ID("confirm")))
	tb.submit("revoke", `form[action$="/revoke"] button[type=submit]`)
	if got := tb.text("#status"); got != "revoked" {
		t.Errorf("after revoking: status %q, want revoked", got)
	}
	if validates(t, ts, key, secret2) || validates(t, ts, key, secret) {
		t.Error("/validate accepts a revoked key")
	}
	// The secret page, shot once its secrets no longer validate anywhere.
	tb.do("rotate page", chromedp.Navigate(ts.Base+"/console/keys/"+key+"/history"), chromedp.WaitVisible(chromedp.CSS("table")))
	tb.clean("history page")
	tb.shot("history")
	tb.do("key list", chromedp.Navigate(ts.Base+"/console/keys"), chromedp.WaitVisible(chromedp.CSS("table")))
	tb.clean("key list")
	tb.shot("keys")
	tb.do("usage page", chromedp.Navigate(ts.Base+"/console/keys/"+key+"/usage"), chromedp.WaitVisible(chromedp.CSS("svg")))
	tb.clean("usage page")
	tb.shot("usage")
	// The dark theme passes the same checks.
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	tb.do("key page, dark", chromedp.Navigate(ts.Base+"/console/keys/"+key), chromedp.WaitVisible(chromedp.CSS("dl")))
	tb.clean("key page, dark")
	tb.shot("key-dark")
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}

	// A team, a team key and an invitation.
	tb.do("teams", chromedp.Click(chromedp.CSS(`nav a[href="/console/teams"]`)), chromedp.WaitVisible(chromedp.ID("team-name")))
	tb.clean("teams page")
	tb.do("name the team", chromedp.SendKeys(chromedp.ID("team-name"), "payments"))
	tb.submit("create team", `form[action="/console/teams"] button[type=submit]`)
	if got := tb.text("#team-role"); got != "owner" {
		t.Fatalf("team page: role %q, want owner", got)
	}
	tb.do("invite", chromedp.SetValue(chromedp.ID("invite-role"), "developer"))
	if st := tb.submit("invite", `form[action$="/invitations"] button[type=submit]`); st != http.StatusCreated {
		t.Fatalf("invite: status %d", st)
	}
	if tb.text("#invitation") == "" {
		t.Error("no invitation on the page")
	}
	tb.do("team key", chromedp.SendKeys(chromedp.ID("team-key-name"), "team key"))
	tb.submit("create team key", `form[action$="/keys"] button[type=submit]`)
	tk, ts2 := tb.text("#api-key"), tb.text("#secret")
	if !validates(t, ts, tk, ts2) {
		t.Error("the team key read off the page does not validate")
	}
	tb.do("back to the team", chromedp.Click(chromedp.CSS(`nav a[href="/console/teams"]`)), chromedp.WaitVisible(chromedp.CSS(`td a[href^="/console/teams/"]`)),
		chromedp.Click(chromedp.CSS(`td a[href^="/console/teams/"]`)), chromedp.WaitVisible(chromedp.ID("team-role")))
	tb.clean("team page")
	tb.shot("team")

	tb.do("account", chromedp.Click(chromedp.CSS(`nav a[href="/console/account"]`)), chromedp.WaitVisible(chromedp.ID("current_password")))
	tb.clean("account page")
	tb.submit("log out", `nav button[type=submit]`)
	if got := tb.text("#notice"); !strings.Contains(got, "logged out") {
		t.Errorf("after log out: notice %q", got)
	}
}

// TestBrowser_CrossOriginForm: a page of another origin that the
// logged-in user opens auto-submits a form to the console, with a leaked
// form token even. The browser sends the session cookie along (same site:
// another port of 127.0.0.1), and the console refuses the post for its
// origin.
func TestBrowser_CrossOriginForm(t *testing.T) {
	tb := newTab(t)
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)

	b := newBrowser(t, ts.Base, nil)
	b.signUpAndLogIn("target@example.com", password)
	tb.do("log in", chromedp.Navigate(ts.Base+"/console/login"), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "target@example.com"), chromedp.SendKeys(chromedp.ID("password"), password))
	tb.submit("log in", `form[action="/console/login"] button[type=submit]`)
	token, err := chromedp.Run(tb.ctx, chromedp.Value(chromedp.CSS(`nav input[name=csrf]`)))
	if err != nil || token == "" {
		t.Fatalf("read the form token: %q %v", token, err)
	}

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>win a prize</title>
<form id="f" method="post" action="%s/console/keys">
<input type="hidden" name="csrf" value="%s"><input type="hidden" name="name" value="planted"><input type="hidden" name="scopes" value="*">
</form><script>document.getElementById("f").submit();</script>`, ts.Base, token)
	}))
	defer evil.Close()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(evil.URL)); err != nil {
		t.Fatalf("open the other site: %v", err)
	}
	// The page posts its form as it loads; wait for the console's answer.
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](`location.pathname === "/console/keys" && document.readyState === "complete"`)); err != nil {
		t.Fatalf("the other site's form did not post: %v", err)
	}
	body, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil || !strings.Contains(body, "posted from another site") {
		t.Errorf("cross-origin post: page says %q (%v), want a refusal", body, err)
	}
	if keys, err := listKeys(t, ts, b); err != nil || len(keys) != 0 {
		t.Errorf("the cross-origin form created %d keys (%v), want none", len(keys), err)
	}
}

// TestBrowser_AdminRevokesAnothersKey plays an admin in headless
// Chromium during an incident: from the admin overview (integrity panel)
// to the list of all keys, a search, the key's page, a revocation with a
// reason and its confirmation; the owner's key is refused at once. Every
// admin page passes the CSP, console-error and axe-core checks, at a
// desktop's width and at 360 px.
func TestBrowser_AdminRevokesAnothersKey(t *testing.T) {
	tb := newTab(t)
	ts, _, _, key, secret, aliceID := startForAdmin(t)
	defer ts.Stop(t)

	tb.do("log in", chromedp.Navigate(ts.Base+"/console/login"), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "root@example.com"), chromedp.SendKeys(chromedp.ID("password"), apptest.Password))
	tb.submit("log in", `form[action="/console/login"] button[type=submit]`)
	tb.do("admin overview", chromedp.Click(chromedp.CSS(`nav a[href="/console/admin/"]`)), chromedp.WaitVisible(chromedp.ID("integrity")))
	tb.clean("admin overview")
	tb.submit("verify now", `#verify-now`)
	// Without JavaScript the page shows the verdict on a reload.
	natstest.Eventually(t, 60*time.Second, func() bool {
		tb.do("reload", chromedp.Navigate(ts.Base+"/console/admin/"), chromedp.WaitVisible(chromedp.ID("verdict")))
		return !strings.Contains(tb.text("#verdict"), "verifying")
	}, "the verification's verdict")
	tb.do("verdict", chromedp.WaitVisible(chromedp.ID("verdict")))
	if got := tb.text("#verdict"); got != "verified: nothing wrong found" {
		t.Errorf("verdict on a clean log: %q", got)
	}
	tb.clean("admin overview with a verdict")
	tb.shot("admin")

	tb.do("users", chromedp.Click(chromedp.CSS(`nav.subnav a[href="/console/admin/users"]`)), chromedp.WaitVisible(chromedp.ID("q")))
	tb.clean("users page")
	tb.shot("admin-users")
	tb.do("all keys", chromedp.Click(chromedp.CSS(`nav.subnav a[href="/console/admin/keys"]`)), chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), key[:12]))
	tb.submit("search keys", `form[action="/console/admin/keys"] button[type=submit]`)
	if got := tb.text("#count"); got != "1 key." {
		t.Fatalf("key search: %q, want 1 key", got)
	}
	tb.shot("admin-keys")
	tb.do("the key", chromedp.Click(chromedp.CSS(`a[href^="/console/admin/keys/`+key+`"]`)), chromedp.WaitVisible(chromedp.ID("revoke-reason")))
	tb.clean("admin key page")
	if got := tb.text("#status"); got != "active" {
		t.Fatalf("key status %q, want active", got)
	}
	tb.do("reason", chromedp.SendKeys(chromedp.ID("revoke-reason"), "leaked in a public repo"), chromedp.Click(chromedp.ID("revoke-confirm")))
	if st := tb.submit("revoke", `#revoke`); st != http.StatusOK {
		t.Fatalf("revoke: status %d", st)
	}
	if got := tb.text("#status"); got != "revoked" {
		t.Errorf("after revoking: status %q", got)
	}
	if validates(t, ts, key, secret) {
		t.Error("/validate accepts the key an admin revoked")
	}
	tb.do("owner's page", chromedp.Click(chromedp.CSS(`a[href="/console/admin/users/`+aliceID+`"]`)), chromedp.WaitVisible(chromedp.ID("user-status")))
	tb.clean("admin user page")
	tb.shot("admin-user")
}
