package app_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/mail"
	"github.com/keyledger/keyledger/internal/mailtest"
)

var mailedTeamToken = regexp.MustCompile(`tmi_[0-9A-Z]{26}\.[A-Za-z0-9_-]{43}`)

// TestTeams_MailedInvitation: with mail configured, an invitation with
// an email is mailed, its token is not in the answer, and the mailed
// token lets the invitee join once.
func TestTeams_MailedInvitation(t *testing.T) {
	t.Parallel()
	ms := mailtest.Start(t, mailtest.Options{})
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.SignUp = app.SignUpConfig{Registration: "open", SMTPURL: "smtp://" + ms.SMTPAddr,
			SMTPFrom: "keyledger@example.com", PublicURL: "https://keys.example.com"}
	})
	defer ts.Stop(t)
	ts.CreateUser(t, "owner@example.com", false)
	ts.CreateUser(t, "invitee@example.com", false)
	ts.CaughtUp(t)
	owner := apptest.Bearer(ts.Login(t, "owner@example.com", apptest.Password))
	invitee := apptest.Bearer(ts.Login(t, "invitee@example.com", apptest.Password))
	r := ts.Do(t, "POST", "/teams", `{"name":"Payments"}`, owner...)
	apptest.WantStatus(t, r, http.StatusCreated)
	team := r.JSON(t)["id"].(string)
	r = ts.Do(t, "POST", "/teams/"+team+"/invitations", `{"role":"viewer","email":"Invitee@Example.com"}`, owner...)
	apptest.WantStatus(t, r, http.StatusCreated)
	if m := r.JSON(t); m["mailed"] != true || m["token"] != nil {
		t.Fatalf("a mailed invitation's answer: %s, want mailed and no token", r.Body)
	}
	msgs := ms.Await(t, "invitee@example.com", 1)
	if msgs[0].Subject != mail.SubjectTeamInvitation {
		t.Errorf("subject: got %q", msgs[0].Subject)
	}
	tok := mailedTeamToken.FindString(msgs[0].Text)
	if tok == "" || !strings.Contains(msgs[0].Text, `"Payments"`) {
		t.Fatalf("no token (or team name) in the mail:\n%s", msgs[0].Text)
	}
	join := `{"token":"` + tok + `"}`
	apptest.WantStatus(t, ts.Do(t, "POST", "/teams/join", join, invitee...), http.StatusOK)
	apptest.WantStatus(t, ts.Do(t, "POST", "/teams/join", join, owner...), http.StatusNotFound)
	if strings.Contains(string(apptest.AllStreamData(t, ts)), "invitee@") {
		t.Error("the invitee's address is in the log")
	}
}

// TestClient_Teams drives the Go client's team calls against the real
// serve wiring.
func TestClient_Teams(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	anon, err := client.New(ts.Base, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	session := func(email string) (*client.Client, string) {
		u, err := anon.Register(ctx, email, apptest.Password)
		if err != nil {
			t.Fatal(err)
		}
		s, err := anon.Login(ctx, email, apptest.Password)
		if err != nil {
			t.Fatal(err)
		}
		return anon.WithSession(s.Token), u.ID
	}
	owner, _ := session("cora@example.com")
	dev, devID := session("dan@example.com")
	team, err := owner.CreateTeam(ctx, "Payments")
	if err != nil || team.Role != client.RoleOwner {
		t.Fatalf("CreateTeam: %+v, %v", team, err)
	}
	inv, err := owner.InviteMember(ctx, team.ID, client.RoleDeveloper, "", time.Hour)
	if err != nil || inv.Token == "" || inv.Mailed {
		t.Fatalf("InviteMember: %+v, %v", inv, err)
	}
	if _, err := dev.GetTeam(ctx, team.ID); !client.IsNotFound(err) {
		t.Fatalf("GetTeam before joining: %v, want 404", err)
	}
	if joined, err := dev.JoinTeam(ctx, inv.Token); err != nil || joined.Role != client.RoleDeveloper {
		t.Fatalf("JoinTeam: %+v, %v", joined, err)
	}
	if teams, err := dev.ListTeams(ctx); err != nil || len(teams) != 1 || teams[0].ID != team.ID {
		t.Fatalf("ListTeams: %+v, %v", teams, err)
	}
	k, err := dev.CreateTeamKey(ctx, team.ID, client.CreateKeyRequest{Name: "ci"})
	if err != nil || k.Owner == nil || k.Owner.ID != team.ID || k.Owner.CreatedBy != devID {
		t.Fatalf("CreateTeamKey: %+v, %v", k, err)
	}
	id, err := dev.Validate(ctx, k.APIKey, k.Secret, client.StyleAPIKeyHeaders)
	if err != nil || id.OwnerType != "team" || id.OwnerID != team.ID || id.CreatedBy != devID {
		t.Fatalf("Validate: %+v, %v", id, err)
	}
	if page, err := owner.ListTeamKeys(ctx, team.ID, client.ListOptions{}); err != nil || len(page.Keys) != 1 {
		t.Fatalf("ListTeamKeys: %+v, %v", page, err)
	}
	sa, err := owner.CreateServiceAccount(ctx, team.ID, "deployer")
	if err != nil || sa.Type != "service_account" {
		t.Fatalf("CreateServiceAccount: %+v, %v", sa, err)
	}
	sk, err := owner.CreateServiceAccountKey(ctx, team.ID, sa.ID, client.CreateKeyRequest{})
	if err != nil || sk.Owner == nil || sk.Owner.ServiceAccount != sa.ID {
		t.Fatalf("CreateServiceAccountKey: %+v, %v", sk, err)
	}
	if err := owner.DisableServiceAccount(ctx, team.ID, sa.ID, "rotate"); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Validate(ctx, sk.APIKey, sk.Secret, client.StyleAPIKeyHeaders); !client.IsUnauthorized(err) {
		t.Fatalf("Validate of a disabled service account's key: %v, want 401", err)
	}
	if accounts, err := owner.ListServiceAccounts(ctx, team.ID); err != nil || len(accounts) != 1 || accounts[0].Status != "disabled" {
		t.Fatalf("ListServiceAccounts: %+v, %v", accounts, err)
	}
	if _, err := owner.ChangeMemberRole(ctx, team.ID, devID, client.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if err := dev.RevokeKey(ctx, k.APIKey); !client.IsForbidden(err) {
		t.Fatalf("RevokeKey as a viewer: %v, want 403", err)
	}
	if members, err := owner.TeamMembers(ctx, team.ID); err != nil || len(members) != 2 || members[1].Email != "dan@example.com" {
		t.Fatalf("TeamMembers: %+v, %v", members, err)
	}
	if err := dev.RemoveMember(ctx, team.ID, devID); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Validate(ctx, k.APIKey, k.Secret, client.StyleAPIKeyHeaders); err != nil {
		t.Fatalf("Validate after its creator left: %v", err)
	}
}
