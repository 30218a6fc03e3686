package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// teamFixture is a team on a real serve: olga owns it, adam is an admin,
// dev1 and dev2 developers, vic a viewer; eve is signed in but no member.
type teamFixture struct {
	ts    *apptest.Server
	team  string
	ids   map[string]string   // role name -> user id
	auth  map[string][]string // role name -> session header
	roles []string
}

func newTeamFixture(t *testing.T, ts *apptest.Server) *teamFixture {
	t.Helper()
	f := &teamFixture{ts: ts, ids: map[string]string{}, auth: map[string][]string{},
		roles: []string{"owner", "admin", "dev1", "dev2", "viewer", "eve"}}
	for _, name := range f.roles {
		f.ids[name] = ts.CreateUser(t, name+"@example.com", false)
	}
	ts.CaughtUp(t)
	for _, name := range f.roles {
		f.auth[name] = apptest.Bearer(ts.Login(t, name+"@example.com", apptest.Password))
	}
	r := ts.Do(t, "POST", "/teams", `{"name":"Payments"}`, f.auth["owner"]...)
	apptest.WantStatus(t, r, http.StatusCreated)
	f.team = r.JSON(t)["id"].(string)
	for name, role := range map[string]string{"admin": "admin", "dev1": "developer", "dev2": "developer", "viewer": "viewer"} {
		f.join(t, name, role)
	}
	return f
}

// join invites name with role (as the owner) and has them join.
func (f *teamFixture) join(t *testing.T, name, role string) {
	t.Helper()
	r := f.ts.Do(t, "POST", "/teams/"+f.team+"/invitations", `{"role":"`+role+`"}`, f.auth["owner"]...)
	apptest.WantStatus(t, r, http.StatusCreated)
	tok := r.JSON(t)["token"].(string)
	apptest.WantStatus(t, f.ts.Do(t, "POST", "/teams/join", `{"token":"`+tok+`"}`, f.auth[name]...), http.StatusOK)
}

// key creates a team key as name.
func (f *teamFixture) key(t *testing.T, name, body string) apptest.CreatedKey {
	t.Helper()
	r := f.ts.Do(t, "POST", "/teams/"+f.team+"/api-keys", body, f.auth[name]...)
	apptest.WantStatus(t, r, http.StatusCreated)
	m := r.JSON(t)
	return apptest.CreatedKey{Key: m["api_key"].(string), Secret: m["secret"].(string)}
}

// TestTeams_RoleMatrix tries each role (and a signed-in outsider) on each
// team route and each key route on a team key: allowed, 403, or 404 for
// the outsider, to whom the team and its keys do not exist.
func TestTeams_RoleMatrix(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	f := newTeamFixture(t, ts)
	team := "/teams/" + f.team
	const ok, no, nf = 0, http.StatusForbidden, http.StatusNotFound
	type row struct {
		name   string
		method string
		path   func(role string) string
		body   string
		okCode int
		want   map[string]int // role -> ok, no or nf
	}
	readers := map[string]int{"owner": ok, "admin": ok, "dev1": ok, "dev2": ok, "viewer": ok, "eve": nf}
	managers := map[string]int{"owner": ok, "admin": ok, "dev1": no, "dev2": no, "viewer": no, "eve": nf}
	creators := map[string]int{"owner": ok, "admin": ok, "dev1": ok, "dev2": ok, "viewer": no, "eve": nf}
	// The key routes act on a key dev1 created: dev2, another developer,
	// may not change it.
	keyWriters := map[string]int{"owner": ok, "admin": ok, "dev1": ok, "dev2": no, "viewer": no, "eve": nf}
	keys := map[string]apptest.CreatedKey{}
	for _, role := range f.roles {
		keys[role] = f.key(t, "dev1", `{"name":"k-`+role+`","credits":{"remaining":10}}`)
	}
	fixed := func(p string) func(string) string { return func(string) string { return p } }
	keyPath := func(suffix string) func(string) string {
		return func(role string) string { return "/api-keys/" + keys[role].Key + suffix }
	}
	rows := []row{
		{"GetTeam", "GET", fixed(team), "", 200, readers},
		{"ListMembers", "GET", fixed(team + "/members"), "", 200, readers},
		{"ListTeamKeys", "GET", fixed(team + "/api-keys"), "", 200, readers},
		{"ListServiceAccounts", "GET", fixed(team + "/service-accounts"), "", 200, readers},
		{"Invite", "POST", fixed(team + "/invitations"), `{"role":"viewer"}`, 201, managers},
		{"ChangeRole", "PATCH", fixed(team + "/members/" + f.ids["viewer"]), `{"role":"viewer"}`, 200, managers},
		{"CreateServiceAccount", "POST", fixed(team + "/service-accounts"), `{"name":"ci"}`, 201, managers},
		{"CreateTeamKey", "POST", fixed(team + "/api-keys"), `{"name":"new"}`, 201, creators},
		{"GetKey", "GET", keyPath(""), "", 200, readers},
		{"KeyUsage", "GET", keyPath("/usage"), "", 200, readers},
		{"EditKey", "PATCH", keyPath(""), `{"name":"renamed"}`, 200, keyWriters},
		{"AddCredits", "POST", keyPath("/credits"), `{"add":1}`, 200, keyWriters},
		{"DisableKey", "POST", keyPath("/disable"), `{}`, 204, keyWriters},
		{"EnableKey", "POST", keyPath("/enable"), `{}`, 204, keyWriters},
		{"RegenerateKey", "POST", keyPath("/regenerate"), `{}`, 200, keyWriters},
		{"RevokeKey", "DELETE", keyPath(""), "", 204, keyWriters},
	}
	for _, rw := range rows {
		t.Run(rw.name, func(t *testing.T) {
			for _, role := range f.roles {
				want := rw.want[role]
				if want == ok {
					want = rw.okCode
				}
				r := ts.Do(t, rw.method, rw.path(role), rw.body, f.auth[role]...)
				if r.Status != want {
					t.Errorf("%s as %s: got %d %s, want %d", rw.name, role, r.Status, r.Body, want)
				}
				if want == nf && (strings.Contains(string(r.Body), f.team) || strings.Contains(string(r.Body), keys[role].Key)) {
					t.Errorf("%s as %s: the 404 names the team or key: %s", rw.name, role, r.Body)
				}
			}
		})
	}
	// A made-up or malformed team is the same 404 as another's.
	for _, p := range []string{"/teams/garbage", "/teams/tm_00000000000000000000000000", "/teams/garbage/members"} {
		apptest.WantStatus(t, ts.Do(t, "GET", p, "", f.auth["owner"]...), http.StatusNotFound)
	}
	for p, body := range map[string]string{"/teams/garbage/api-keys": `{}`, "/teams/garbage/invitations": `{"role":"viewer"}`,
		"/teams/" + f.team + "/service-accounts/sa_x/api-keys": `{}`} {
		apptest.WantStatus(t, ts.Do(t, "POST", p, body, f.auth["owner"]...), http.StatusNotFound)
	}
	// The team's keys never show in anyone's own listing.
	for _, role := range f.roles {
		r := ts.Do(t, "GET", "/api-keys", "", f.auth[role]...)
		if strings.Contains(string(r.Body), keys["owner"].Key) {
			t.Errorf("GET /api-keys as %s lists a team key: %s", role, r.Body)
		}
	}
}

// TestTeams_Invitation: an invitation works once, and not after it
// expires; a forged token is refused like a used one.
func TestTeams_Invitation(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	f := newTeamFixture(t, ts)
	invite := func(body string) (string, time.Time) {
		r := ts.Do(t, "POST", "/teams/"+f.team+"/invitations", body, f.auth["owner"]...)
		apptest.WantStatus(t, r, http.StatusCreated)
		exp, err := time.Parse(time.RFC3339Nano, r.JSON(t)["expires_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return r.JSON(t)["token"].(string), exp
	}
	join := func(who, tok string) apptest.Response {
		return ts.Do(t, "POST", "/teams/join", `{"token":"`+tok+`"}`, f.auth[who]...)
	}
	t.Run("ErrReused", func(t *testing.T) {
		tok, _ := invite(`{"role":"developer"}`)
		apptest.WantStatus(t, join("eve", tok), http.StatusOK)
		apptest.WantStatus(t, ts.Do(t, "DELETE", "/teams/"+f.team+"/members/"+f.ids["eve"], "", f.auth["eve"]...), http.StatusNoContent)
		// Gone, and the used token does not let eve back in.
		apptest.WantStatus(t, join("eve", tok), http.StatusNotFound)
		apptest.WantStatus(t, ts.Do(t, "GET", "/teams/"+f.team, "", f.auth["eve"]...), http.StatusNotFound)
	})
	t.Run("ErrExpired", func(t *testing.T) {
		tok, exp := invite(`{"role":"viewer","expires_in":"1ms"}`)
		for !time.Now().After(exp) { // the server reads the same clock
			time.Sleep(time.Millisecond)
		}
		apptest.WantStatus(t, join("eve", tok), http.StatusNotFound)
	})
	t.Run("ErrForged", func(t *testing.T) {
		tok, _ := invite(`{"role":"owner"}`)
		id, _, _ := strings.Cut(tok, ".")
		apptest.WantStatus(t, join("eve", id+"."+strings.Repeat("A", 43)), http.StatusNotFound)
		apptest.WantStatus(t, join("eve", "garbage"), http.StatusBadRequest)
	})
	t.Run("TokenNeverLogged", func(t *testing.T) {
		tok, _ := invite(`{"role":"viewer","email":"someone@example.com"}`)
		apptest.WantStatus(t, join("eve", tok), http.StatusOK)
		_, secret, _ := strings.Cut(tok, ".")
		logs := ts.Logs.String()
		if strings.Contains(logs, secret) || strings.Contains(logs, "someone@example.com") {
			t.Error("serve's log holds an invitation token or the address it was for")
		}
		if data := string(apptest.AllStreamData(t, ts)); strings.Contains(data, secret) || strings.Contains(data, "someone@example.com") {
			t.Error("the log holds an invitation token or the address it was for")
		}
	})
	t.Run("ErrLastOwner", func(t *testing.T) {
		apptest.WantStatus(t, ts.Do(t, "DELETE", "/teams/"+f.team+"/members/"+f.ids["owner"], "", f.auth["owner"]...), http.StatusConflict)
		apptest.WantStatus(t, ts.Do(t, "PATCH", "/teams/"+f.team+"/members/"+f.ids["owner"], `{"role":"admin"}`, f.auth["owner"]...), http.StatusConflict)
		apptest.WantStatus(t, ts.Do(t, "PATCH", "/teams/"+f.team+"/members/"+f.ids["dev1"], `{"role":"owner"}`, f.auth["admin"]...), http.StatusForbidden)
	})
}

// TestTeams_RemovedMember: a removed member's keys stay the team's and
// keep validating; the removed member can no longer see or change them.
func TestTeams_RemovedMember(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	f := newTeamFixture(t, ts)
	k := f.key(t, "dev1", `{"name":"ci"}`)
	r := ts.Do(t, "GET", "/validate", "", "X-Api-Key", apptest.Base64(k.Key), "X-Api-Secret", apptest.Base64(k.Secret))
	apptest.WantStatus(t, r, http.StatusOK)
	id := r.JSON(t)
	if id["owner_type"] != "team" || id["owner_id"] != f.team || id["created_by"] != f.ids["dev1"] || id["user_id"] != f.ids["dev1"] {
		t.Fatalf("validation of a team key: got %s", r.Body)
	}
	if r.Header.Get("X-Keyledger-Owner") != f.team || r.Header.Get("X-Keyledger-Owner-Type") != "team" {
		t.Errorf("validation headers of a team key: got owner %q of type %q, want the team",
			r.Header.Get("X-Keyledger-Owner"), r.Header.Get("X-Keyledger-Owner-Type"))
	}
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/teams/"+f.team+"/members/"+f.ids["dev1"], "", f.auth["admin"]...), http.StatusNoContent)
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Errorf("the removed member's key: got %d, want 200", got)
	}
	for _, step := range []struct{ method, path, body string }{
		{"GET", "/api-keys/" + k.Key, ""}, {"DELETE", "/api-keys/" + k.Key, ""},
		{"POST", "/api-keys/" + k.Key + "/regenerate", "{}"}, {"POST", "/teams/" + f.team + "/api-keys", "{}"},
	} {
		if r := ts.Do(t, step.method, step.path, step.body, f.auth["dev1"]...); r.Status != http.StatusNotFound {
			t.Errorf("%s %s by the removed member: got %d %s, want 404", step.method, step.path, r.Status, r.Body)
		}
	}
	// Disabling or erasing the creator does not stop the team's key.
	root := ts.RootAdmin(t)
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/users/"+f.ids["dev1"]+"/disable", `{}`), http.StatusNoContent)
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Errorf("the team key of a disabled user: got %d, want 200", got)
	}
	// An erased owner leaves the team; the team stays and an admin gives
	// it an owner again.
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/users/"+f.ids["owner"]+"/erase", `{}`), http.StatusOK)
	if r := ts.Do(t, "GET", "/teams/"+f.team+"/members", "", f.auth["admin"]...); strings.Contains(string(r.Body), f.ids["owner"]) {
		t.Errorf("the erased owner is still a member: %s", r.Body)
	}
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/teams/"+f.team+"/transfer", `{"owner":"`+f.ids["admin"]+`"}`), http.StatusNoContent)
	if r := ts.Do(t, "GET", "/teams/"+f.team, "", f.auth["admin"]...); r.JSON(t)["role"] != "owner" {
		t.Errorf("after the transfer: %s, want owner", r.Body)
	}
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Errorf("the team key after its owner's erasure: got %d, want 200", got)
	}
}

// TestTeams_ServiceAccounts: a service account's key validates as the
// team's, created by the account; disabling the account stops its keys,
// enabling resumes them, deleting stops them for good. A developer may
// not make service accounts nor their keys.
func TestTeams_ServiceAccounts(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	f := newTeamFixture(t, ts)
	r := ts.Do(t, "POST", "/teams/"+f.team+"/service-accounts", `{"name":"deployer"}`, f.auth["admin"]...)
	apptest.WantStatus(t, r, http.StatusCreated)
	sa := r.JSON(t)["id"].(string)
	if r.JSON(t)["type"] != "service_account" {
		t.Errorf("service account view: %s", r.Body)
	}
	base := "/teams/" + f.team + "/service-accounts/" + sa
	apptest.WantStatus(t, ts.Do(t, "POST", base+"/api-keys", `{}`, f.auth["dev1"]...), http.StatusForbidden)
	r = ts.Do(t, "POST", base+"/api-keys", `{"name":"deploy"}`, f.auth["admin"]...)
	apptest.WantStatus(t, r, http.StatusCreated)
	k := apptest.CreatedKey{Key: r.JSON(t)["api_key"].(string), Secret: r.JSON(t)["secret"].(string)}
	v := ts.Do(t, "GET", "/validate", "", "X-Api-Key", apptest.Base64(k.Key), "X-Api-Secret", apptest.Base64(k.Secret))
	apptest.WantStatus(t, v, http.StatusOK)
	if id := v.JSON(t); id["owner_type"] != "team" || id["created_by"] != sa || id["service_account"] != sa {
		t.Fatalf("validation of a service account's key: %s", v.Body)
	}
	apptest.WantStatus(t, ts.Do(t, "POST", base+"/disable", `{"reason":"rotating"}`, f.auth["admin"]...), http.StatusNoContent)
	if got := ts.Validate(t, k); got != http.StatusUnauthorized {
		t.Errorf("key of a disabled service account: got %d, want 401", got)
	}
	apptest.WantStatus(t, ts.Do(t, "POST", base+"/enable", `{}`, f.auth["admin"]...), http.StatusNoContent)
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Errorf("key of a re-enabled service account: got %d, want 200", got)
	}
	apptest.WantStatus(t, ts.Do(t, "DELETE", base, "", f.auth["viewer"]...), http.StatusForbidden)
	apptest.WantStatus(t, ts.Do(t, "DELETE", base, "", f.auth["owner"]...), http.StatusNoContent)
	if got := ts.Validate(t, k); got != http.StatusUnauthorized {
		t.Errorf("key of a deleted service account: got %d, want 401", got)
	}
	apptest.WantStatus(t, ts.Do(t, "POST", base+"/enable", `{}`, f.auth["admin"]...), http.StatusNotFound)
	if got := ts.Validate(t, k); got != http.StatusUnauthorized {
		t.Errorf("key of a deleted service account after an enable: got %d, want 401", got)
	}
}

// TestTeams_DisableOnThreeNodes: an admin disabling a team stops its keys
// on three validation nodes at once (?wait=nodes), and enabling it
// brings them back.
func TestTeams_DisableOnThreeNodes(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.Fleet = app.FleetConfig{NodeName: "serve:test", HeartbeatInterval: 50 * time.Millisecond, Liveness: time.Minute,
			WaitTimeout: 10 * time.Second}
	})
	defer ts.Stop(t)
	root := ts.RootAdmin(t)
	var nodes []*app.Node
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		n := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0",
			NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)},
			Fleet:      app.FleetConfig{NodeName: name, HeartbeatInterval: 50 * time.Millisecond}}}
		if err := n.Open(context.Background()); err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		defer n.Close(context.Background())
		nodes = append(nodes, n)
	}
	f := newTeamFixture(t, ts)
	k := f.key(t, "dev1", `{}`)
	own := ts.CreateKey(t, strings.TrimPrefix(f.auth["dev1"][1], "Bearer "), "")
	natstest.Eventually(t, 10*time.Second, func() bool {
		_, listed := adminNodes(t, ts, root)
		return listed["node-1"].Live && listed["node-2"].Live && listed["node-3"].Live
	}, "three nodes listed live")
	for i, n := range nodes {
		natstest.Eventually(t, 10*time.Second, func() bool {
			_, err := n.Validator().Validate(context.Background(), k.Key, k.Secret)
			return err == nil
		}, fmt.Sprintf("the team key valid on node-%d", i+1))
	}
	path := "/admin/teams/" + f.team + "/disable?wait=nodes"
	r := ts.Do(t, "POST", path, `{"reason":"abuse"}`, ts.AdminSigned(t, root, "POST", path, `{"reason":"abuse"}`)...)
	if r.Status != http.StatusNoContent || r.Header.Get("Keyledger-Nodes-Applied") != "4/4" {
		t.Fatalf("disable with ?wait=nodes: got %d %q %s, want 204 with 4/4", r.Status, r.Header.Get("Keyledger-Nodes-Applied"), r.Body)
	}
	for i, n := range nodes {
		if _, err := n.Validator().Validate(context.Background(), k.Key, k.Secret); err == nil {
			t.Errorf("node-%d accepts a disabled team's key", i+1)
		}
		if _, err := n.Validator().Validate(context.Background(), own.Key, own.Secret); err != nil {
			t.Errorf("node-%d refuses the member's own key: %v", i+1, err)
		}
	}
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/teams/"+f.team+"/enable", `{}`), http.StatusNoContent)
	for i, n := range nodes {
		natstest.Eventually(t, 10*time.Second, func() bool {
			_, err := n.Validator().Validate(context.Background(), k.Key, k.Secret)
			return err == nil
		}, fmt.Sprintf("the team key valid again on node-%d", i+1))
	}
}
