package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app/apptest"
)

var invitationOnPage = regexp.MustCompile(`<code id="invitation">([^<]+)</code>`)

// TestConsole_Teams: alice creates a team and a team key that validates,
// invites bob, who joins with the invitation shown once; bob, a
// developer, creates a team key too; a viewer cannot; a user outside the
// team sees the console's 404 for it.
func TestConsole_Teams(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	alice := newBrowser(t, ts.Base, nil)
	alice.signUpAndLogIn("alice@example.com", password)
	tp := alice.get("/console/teams")
	if !strings.Contains(tp.body, "You are in no team yet.") {
		t.Fatalf("teams page: %s", tp.body)
	}
	p := alice.post("/console/teams", url.Values{"csrf": {tp.csrf(t)}, "name": {"payments"}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/console/teams/tm_") {
		t.Fatalf("create team: got %d to %q", p.status, p.header.Get("Location"))
	}
	teamURL := p.header.Get("Location")
	team := alice.get(teamURL)
	if !strings.Contains(team.body, `id="team-role">owner<`) {
		t.Fatalf("team page: %s", team.body)
	}
	key, secret := secretPage(t, alice.post(teamURL+"/keys", url.Values{"csrf": {team.csrf(t)}, "name": {"billing"}, "scopes": {"invoices:read"}}))
	if !validates(t, ts, key, secret, "invoices:read") {
		t.Fatal("the team key does not validate")
	}
	if !strings.Contains(alice.get(teamURL).body, key) {
		t.Error("the team page does not list the team key")
	}

	inv := alice.post(teamURL+"/invitations", url.Values{"csrf": {team.csrf(t)}, "role": {"developer"}, "expires": {"1d"}})
	m := invitationOnPage.FindStringSubmatch(inv.body)
	if inv.status != http.StatusCreated || m == nil {
		t.Fatalf("invite: got %d: %s", inv.status, inv.body)
	}
	if strings.Contains(alice.get(teamURL).body, m[1]) {
		t.Error("the invitation is shown again on the next visit")
	}
	bob := newBrowser(t, ts.Base, nil)
	bob.signUpAndLogIn("bob@example.com", password)
	if p := bob.get(teamURL); p.status != http.StatusNotFound {
		t.Errorf("a non-member's team page: got %d, want 404", p.status)
	}
	j := bob.post("/console/teams/join", url.Values{"csrf": {bob.get("/console/teams").csrf(t)}, "token": {m[1]}})
	if j.status != http.StatusSeeOther || j.header.Get("Location") != teamURL {
		t.Fatalf("join: got %d to %q: %s", j.status, j.header.Get("Location"), j.body)
	}
	bt := bob.get(teamURL)
	if !strings.Contains(bt.body, `id="team-role">developer<`) || !strings.Contains(bt.body, "alice@example.com") {
		t.Fatalf("bob's team page: %s", bt.body)
	}
	k2, s2 := secretPage(t, bob.post(teamURL+"/keys", url.Values{"csrf": {bt.csrf(t)}, "name": {"bob's"}}))
	if !validates(t, ts, k2, s2) {
		t.Error("bob's team key does not validate")
	}
	if p := bob.post(teamURL+"/invitations", url.Values{"csrf": {bt.csrf(t)}, "role": {"admin"}}); p.status != http.StatusForbidden {
		t.Errorf("a developer inviting: got %d, want 403", p.status)
	}

	// A viewer sees the keys and cannot create one.
	inv = alice.post(teamURL+"/invitations", url.Values{"csrf": {team.csrf(t)}, "role": {"viewer"}})
	m = invitationOnPage.FindStringSubmatch(inv.body)
	if m == nil {
		t.Fatalf("invite a viewer: %d %s", inv.status, inv.body)
	}
	vic := newBrowser(t, ts.Base, nil)
	vic.signUpAndLogIn("vic@example.com", password)
	vic.post("/console/teams/join", url.Values{"csrf": {vic.get("/console/teams").csrf(t)}, "token": {m[1]}})
	vp := vic.get(teamURL)
	if !strings.Contains(vp.body, key) || strings.Contains(vp.body, `action="`+teamURL+`/keys"`) {
		t.Errorf("the viewer's team page: keys listed %v, create form shown %v", strings.Contains(vp.body, key), strings.Contains(vp.body, `action="`+teamURL+`/keys"`))
	}
	if p := vic.post(teamURL+"/keys", url.Values{"csrf": {vp.csrf(t)}, "name": {"sneaky"}}); p.status != http.StatusForbidden {
		t.Errorf("a viewer creating a team key: got %d, want 403", p.status)
	}
}
