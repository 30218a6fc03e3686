package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// logIn logs the browser in as an existing user.
func (b *browser) logIn(email, password string) {
	b.t.Helper()
	p := b.get("/console/login")
	got := b.post("/console/login", url.Values{"csrf": {p.csrf(b.t)}, "email": {email}, "password": {password}})
	if got.status != http.StatusSeeOther {
		b.t.Fatalf("log in %s: got %d, want 303: %s", email, got.status, got.body)
	}
}

// startForAdmin starts serve with no scheduled verification (only on
// demand), an owner alice with a key, and an admin browser logged in.
func startForAdmin(t *testing.T) (ts *apptest.Server, alice, root *browser, key, secret, aliceID string) {
	t.Helper()
	ts = apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.VerifyInterval = -1 })
	alice = newBrowser(t, ts.Base, nil)
	alice.signUpAndLogIn("alice@example.com", password)
	key, secret = secretPage(t, alice.post("/console/keys", url.Values{"csrf": {alice.get("/console/keys/new").csrf(t)}, "name": {"alice's"}}))
	// The admin user, created as `keyledger admin users create` does: by a
	// request signed with the root admin's key.
	body := `{"email":"root@example.com","password":"` + apptest.Password + `","role":"admin","salt":"0123456789abcdefghijklmnop"}`
	apptest.WantStatus(t, ts.AdminDo(t, ts.RootAdmin(t), "POST", "/admin/users", body), http.StatusCreated)
	root = newBrowser(t, ts.Base, nil)
	root.logIn("root@example.com", apptest.Password)
	m := regexp.MustCompile(`href="/console/admin/users/([^"]+)">alice@example.com<`).FindStringSubmatch(root.get("/console/admin/users?q=alice").body)
	if m == nil {
		t.Fatal("the users page does not list alice")
	}
	return ts, alice, root, key, secret, m[1]
}

// TestConsole_AdminPagesAreAdminsOnly: an owner sees no admin link, and
// every admin page and action answers the console's 404, changing
// nothing, however the request is made.
func TestConsole_AdminPagesAreAdminsOnly(t *testing.T) {
	ts, alice, _, key, secret, aliceID := startForAdmin(t)
	defer ts.Stop(t)
	if p := alice.get("/console/keys"); strings.Contains(p.body, "/console/admin/") || !strings.Contains(p.body, "Signed in as <strong>alice@example.com</strong>") {
		t.Errorf("an owner's page: admin link or no 'signed in as': %s", p.body)
	}
	tok := alice.get("/console/keys").csrf(t)
	for _, path := range []string{"/console/admin/", "/console/admin/users", "/console/admin/users/" + aliceID, "/console/admin/keys",
		"/console/admin/keys/" + key + "?user=" + aliceID} {
		if p := alice.get(path); p.status != http.StatusNotFound || strings.Contains(p.body, "alice's") || strings.Contains(p.body, "Trust root") {
			t.Errorf("owner GET %s: got %d, want the 404 page", path, p.status)
		}
	}
	form := url.Values{"csrf": {tok}, "confirm": {"yes"}, "user": {aliceID}, "reason": {"mine now"}}
	for _, path := range []string{"/console/admin/keys/" + key + "/revoke", "/console/admin/keys/" + key + "/disable",
		"/console/admin/users/" + aliceID + "/disable", "/console/admin/users/" + aliceID + "/revoke-keys", "/console/admin/integrity/verify"} {
		if p := alice.post(path, form); p.status != http.StatusNotFound {
			t.Errorf("owner POST %s: got %d, want 404", path, p.status)
		}
	}
	if !validates(t, ts, key, secret) {
		t.Error("an owner's posts to admin pages changed their key")
	}
	// Signed out, the admin pages send to the login page.
	anon := newBrowser(t, ts.Base, nil)
	if p := anon.get("/console/admin/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/login" {
		t.Errorf("signed out: got %d to %q, want 303 to the login page", p.status, p.header.Get("Location"))
	}
}

// TestConsole_AdminActs: an admin finds another user's key, revokes it
// with a reason (after confirming), and it no longer validates; disables
// and enables the user; the integrity panel shows the trust root and, once
// asked, the verdict of a verification, which turns to "problems found"
// when someone with NATS credentials writes a message the ledger did not
// sign.
func TestConsole_AdminActs(t *testing.T) {
	ts, alice, root, key, secret, aliceID := startForAdmin(t)
	defer ts.Stop(t)

	home := root.get("/console/admin/")
	if home.status != http.StatusOK || !strings.Contains(home.body, "Signed in as <strong>root@example.com</strong> (admin)") {
		t.Fatalf("admin home: %d: %s", home.status, home.body)
	}
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	genesis, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	fp := eventstore.TrustRootOf(genesis.Subject, genesis.Data)
	if !strings.Contains(home.body, fp) || !strings.Contains(home.body, "not verified yet") {
		t.Errorf("admin home lacks the trust root %s or the 'not verified yet' verdict: %s", fp, home.body)
	}

	// The key, found by its name, and its page.
	list := root.get("/console/admin/keys?q=alice%27s&status=active")
	if !strings.Contains(list.body, key) || !strings.Contains(list.body, "1 key.") {
		t.Fatalf("admin key search: %s", list.body)
	}
	kp := root.get("/console/admin/keys/" + key + "?user=" + aliceID)
	if kp.status != http.StatusOK || !strings.Contains(kp.body, aliceID) {
		t.Fatalf("admin key page: %d %s", kp.status, kp.body)
	}
	if p := root.get("/console/admin/keys/" + key + "?user=someone-else"); p.status != http.StatusNotFound {
		t.Errorf("a key under another owner: got %d, want 404", p.status)
	}
	// Unconfirmed: refused, nothing changes.
	p := root.post("/console/admin/keys/"+key+"/revoke", url.Values{"csrf": {kp.csrf(t)}, "user": {aliceID}, "reason": {"leaked"}})
	if p.status != http.StatusBadRequest || !validates(t, ts, key, secret) {
		t.Fatalf("revoke without confirming: got %d, key valid %v; want 400 and valid", p.status, validates(t, ts, key, secret))
	}
	p = root.post("/console/admin/keys/"+key+"/revoke", url.Values{"csrf": {kp.csrf(t)}, "user": {aliceID}, "reason": {"leaked"}, "confirm": {"yes"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="status">revoked<`) {
		t.Fatalf("revoke: got %d: %s", p.status, p.body)
	}
	if validates(t, ts, key, secret) {
		t.Fatal("the key an admin revoked still validates")
	}
	if h := alice.get("/console/keys/" + key + "/history"); !strings.Contains(h.body, "leaked") {
		t.Errorf("alice's history of the key does not show the admin's reason: %s", h.body)
	}

	// Disable alice: her console session ends; enable her again.
	up := root.get("/console/admin/users/" + aliceID)
	p = root.post("/console/admin/users/"+aliceID+"/disable", url.Values{"csrf": {up.csrf(t)}, "reason": {"abuse"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="user-status">disabled<`) {
		t.Fatalf("disable alice: got %d: %s", p.status, p.body)
	}
	if got := alice.get("/console/keys"); got.status != http.StatusSeeOther || got.header.Get("Location") != "/console/login" {
		t.Errorf("a disabled user's console: got %d to %q, want the login page", got.status, got.header.Get("Location"))
	}
	p = root.post("/console/admin/users/"+aliceID+"/enable", url.Values{"csrf": {up.csrf(t)}, "reason": {"appeal"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="user-status">active<`) {
		t.Fatalf("enable alice: got %d: %s", p.status, p.body)
	}
	if p := root.get("/console/admin/users?status=disabled"); !strings.Contains(p.body, "0 users.") {
		t.Errorf("disabled filter after enabling: %s", p.body)
	}

	// Integrity: a clean verification, then a forged message.
	verify := func() page {
		t.Helper()
		if p := root.post("/console/admin/integrity/verify", url.Values{"csrf": {home.csrf(t)}}); p.status != http.StatusOK {
			t.Fatalf("verify now: got %d: %s", p.status, p.body)
		}
		var last page
		natstest.Eventually(t, 60*time.Second, func() bool {
			last = root.get("/console/admin/")
			return !strings.Contains(last.body, "verifying")
		}, "the verification's verdict")
		return last
	}
	if got := verify(); !strings.Contains(got.body, "verified: nothing wrong found") {
		t.Fatalf("verdict on a clean log: %s", got.body)
	}
	forged := fmt.Sprintf(`{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B8Y","type":"key.revoked","schema":1,"aggregate":%q,"version":9,"time":"2026-11-01T00:00:00Z","actor":"admin:root","data":{"reason":"forged"}}`, key)
	ack, err := js.Publish(ctx, "keyledger.key."+key, []byte(forged))
	if err != nil {
		t.Fatal(err)
	}
	got := verify()
	if !strings.Contains(got.body, "problems found") || !strings.Contains(got.body, fmt.Sprintf("sequence %d", ack.Sequence)) {
		t.Fatalf("verdict after a forged message at %d: %s", ack.Sequence, got.body)
	}
}
