package domain_test

import (
	"testing"

	"github.com/keyledger/keyledger/domain"
)

const (
	carol = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1E"
	dave  = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1F"
	erin  = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1G"
)

// givenTeam folds events made by the team's own commands: alice owns it,
// bob is an admin, carol a developer, dave a viewer; erin is not a member.
func givenTeam(t *testing.T) domain.Team {
	t.Helper()
	var team domain.Team
	apply := func(events []domain.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if err := team.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(team.CreateTeam(teamID, "Payments", alice, t0))
	for i, m := range []struct {
		user string
		role domain.TeamRole
	}{{bob, domain.TeamAdmin}, {carol, domain.TeamDeveloper}, {dave, domain.TeamViewer}} {
		tok := teamToken(t, i)
		apply(team.Invite(alice, tok, m.role, t1, t0))
		apply(team.Join(m.user, tok, t0))
	}
	return team
}

func teamToken(t *testing.T, i int) domain.Token {
	t.Helper()
	id := []string{"tmi_01JH6Z3Q8X4N6V2R9T5M7K3B6A", "tmi_01JH6Z3Q8X4N6V2R9T5M7K3B6B", "tmi_01JH6Z3Q8X4N6V2R9T5M7K3B6C",
		"tmi_01JH6Z3Q8X4N6V2R9T5M7K3B6D"}[i]
	tok, err := domain.NewToken(id, constReader(byte(i+1)))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func TestTeam_KeyAccess(t *testing.T) {
	t.Parallel()
	team := givenTeam(t)
	ok, nf, fb := domain.Kind(""), domain.NotFound, domain.Forbidden
	tests := []struct {
		user      string
		action    domain.KeyAction
		createdBy string
		want      domain.Kind
	}{
		{alice, domain.KeyManage, carol, ok},
		{bob, domain.KeyManage, carol, ok},
		{carol, domain.KeyManage, carol, ok},
		{carol, domain.KeyManage, bob, fb}, // a developer revoking another's key
		{carol, domain.KeyCreate, "", ok},
		{dave, domain.KeyRead, carol, ok},
		{dave, domain.KeyCreate, "", fb}, // a viewer creating a key
		{dave, domain.KeyManage, dave, fb},
		{erin, domain.KeyRead, carol, nf}, // a non-member reading a team key
		{erin, domain.KeyManage, carol, nf},
	}
	for _, tc := range tests {
		err := team.KeyAccess(tc.user, tc.action, tc.createdBy)
		if got := kindOrEmpty(err); got != tc.want {
			t.Errorf("KeyAccess(%s, %d, %s): got %q (%v), want %q", tc.user, tc.action, tc.createdBy, got, err, tc.want)
		}
	}
}

func kindOrEmpty(err error) domain.Kind {
	if err == nil {
		return ""
	}
	return domain.KindOf(err)
}

func TestTeam_Invitation(t *testing.T) {
	t.Parallel()
	t.Run("ErrReused", func(t *testing.T) {
		team := givenTeam(t)
		tok := teamToken(t, 3)
		events, err := team.Invite(bob, tok, domain.TeamViewer, t2, t0)
		if err != nil {
			t.Fatal(err)
		}
		_ = team.Apply(events[0])
		events, err = team.Join(erin, tok, t0)
		if err != nil {
			t.Fatal(err)
		}
		_ = team.Apply(events[0])
		// Removed and trying the used token again.
		events, _ = team.RemoveMember(erin, erin, t0)
		_ = team.Apply(events[0])
		if _, err := team.Join(erin, tok, t0); domain.KindOf(err) != domain.NotFound {
			t.Errorf("reused: got %v, want NotFound", err)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		team := givenTeam(t)
		tok := teamToken(t, 3)
		events, _ := team.Invite(bob, tok, domain.TeamViewer, t1, t0)
		_ = team.Apply(events[0])
		if _, err := team.Join(erin, tok, t1); domain.KindOf(err) != domain.NotFound {
			t.Errorf("expired: got %v, want NotFound", err)
		}
	})
	t.Run("ErrWrongSecret", func(t *testing.T) {
		team := givenTeam(t)
		tok := teamToken(t, 3)
		events, _ := team.Invite(bob, tok, domain.TeamViewer, t1, t0)
		_ = team.Apply(events[0])
		forged, _ := domain.NewToken(tok.Aggregate, constReader(9))
		if _, err := team.Join(erin, forged, t0); domain.KindOf(err) != domain.NotFound {
			t.Errorf("forged: got %v, want NotFound", err)
		}
	})
	t.Run("ErrTeamDisabled", func(t *testing.T) {
		// A disabled team takes no new members: no invitation is issued,
		// and one issued before cannot be used until it is enabled.
		team := givenTeam(t)
		tok := teamToken(t, 3)
		events, err := team.Invite(bob, tok, domain.TeamViewer, t2, t0)
		if err != nil {
			t.Fatal(err)
		}
		_ = team.Apply(events[0])
		events, err = team.SetDisabled("admin:root", true, "abuse", t0)
		if err != nil || len(events) != 1 {
			t.Fatal(err)
		}
		_ = team.Apply(events[0])
		if _, err := team.Invite(bob, teamToken(t, 2), domain.TeamViewer, t2, t0); domain.KindOf(err) != domain.Conflict {
			t.Errorf("invite while disabled: got %v, want Conflict", err)
		}
		if _, err := team.Join(erin, tok, t0); domain.KindOf(err) != domain.Conflict {
			t.Errorf("join while disabled: got %v, want Conflict", err)
		}
		events, _ = team.SetDisabled("admin:root", false, "cleared", t0)
		_ = team.Apply(events[0])
		if _, err := team.Join(erin, tok, t0); err != nil {
			t.Errorf("join once enabled again: %v", err)
		}
	})
	t.Run("ErrAdminInvitesOwner", func(t *testing.T) {
		team := givenTeam(t)
		if _, err := team.Invite(bob, teamToken(t, 3), domain.TeamOwner, t1, t0); domain.KindOf(err) != domain.Forbidden {
			t.Errorf("got %v, want Forbidden", err)
		}
	})
	t.Run("ErrDeveloperInvites", func(t *testing.T) {
		team := givenTeam(t)
		if _, err := team.Invite(carol, teamToken(t, 3), domain.TeamViewer, t1, t0); domain.KindOf(err) != domain.Forbidden {
			t.Errorf("got %v, want Forbidden", err)
		}
	})
}

func TestTeam_Members(t *testing.T) {
	t.Parallel()
	team := givenTeam(t)
	if _, err := team.RemoveMember(alice, alice, t0); domain.KindOf(err) != domain.Conflict {
		t.Errorf("last owner leaves: got %v, want Conflict", err)
	}
	if _, err := team.ChangeRole(alice, alice, domain.TeamAdmin, t0); domain.KindOf(err) != domain.Conflict {
		t.Errorf("last owner demoted: got %v, want Conflict", err)
	}
	if _, err := team.ChangeRole(bob, carol, domain.TeamOwner, t0); domain.KindOf(err) != domain.Forbidden {
		t.Errorf("admin makes an owner: got %v, want Forbidden", err)
	}
	if _, err := team.RemoveMember(bob, alice, t0); domain.KindOf(err) != domain.Forbidden {
		t.Errorf("admin removes an owner: got %v, want Forbidden", err)
	}
	if _, err := team.RemoveMember(carol, dave, t0); domain.KindOf(err) != domain.Forbidden {
		t.Errorf("developer removes a member: got %v, want Forbidden", err)
	}
	if _, err := team.RemoveMember(erin, dave, t0); domain.KindOf(err) != domain.NotFound {
		t.Errorf("non-member removes a member: got %v, want NotFound", err)
	}
	events, err := team.RemoveMember(dave, dave, t0)
	if err != nil || len(events) != 1 || events[0].Actor != dave {
		t.Fatalf("viewer leaves: got %v, %v, want one event by dave", events, err)
	}
	events, err = team.RemoveErased("admin:root", alice, t0)
	if err != nil || team.Apply(events[0]) != nil {
		t.Fatalf("erased owner: got %v, want removed", err)
	}
	if team.Owners() != 0 {
		t.Errorf("owners: got %d, want 0 (the team stays, an admin transfers it)", team.Owners())
	}
	events, err = team.Transfer("admin:root", erin, "", t1)
	if err != nil || team.Apply(events[0]) != nil {
		t.Fatalf("transfer: %v", err)
	}
	if r, _ := team.RoleOf(erin); r != domain.TeamOwner {
		t.Errorf("after transfer: got %q, want owner", r)
	}
}

func TestTeam_ApplyDoesNotShareMaps(t *testing.T) {
	t.Parallel()
	team := givenTeam(t)
	before := team
	events, err := team.RemoveMember(alice, dave, t0)
	if err != nil {
		t.Fatal(err)
	}
	_ = team.Apply(events[0])
	if _, ok := before.Members[dave]; !ok {
		t.Error("a copy of the team lost the member: Apply changed a shared map")
	}
}

// FuzzParseTeamInvitationToken: the token POST /teams/join reads is
// refused as Invalid or parsed back exactly as given, and never a
// sign-up token (nor one of those a team's).
func FuzzParseTeamInvitationToken(f *testing.F) {
	f.Add("tmi_01JH6Z3Q8X4N6V2R9T5M7K3B6A.AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE")
	f.Add("inv_01JH6Z3Q8X4N6V2R9T5M7K3B6A.AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE")
	f.Add("tmi_.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := domain.ParseTeamInvitationToken(s)
		if err != nil {
			if domain.KindOf(err) != domain.Invalid || !tok.IsZero() {
				t.Fatalf("got %v (kind %v), want Invalid and a zero token", err, domain.KindOf(err))
			}
			return
		}
		if tok.Reveal() != s || !domain.ValidTeamInvitationID(tok.Aggregate) {
			t.Fatalf("got %q of %q, want the input back with a team invitation id", tok.Reveal(), tok.Aggregate)
		}
		if _, err := domain.ParseToken(s); err == nil {
			t.Fatalf("ParseToken accepts the team token %q", s)
		}
	})
}

// TestKey_TeamOwner: a team's key is nobody's own, its creator's neither:
// only a member the ledger handed it to (ForMember, after the role check)
// passes the key's owner checks, and the events record that member.
func TestKey_TeamOwner(t *testing.T) {
	t.Parallel()
	var k domain.Key
	events, err := k.Create(domain.CreateKey{APIKey: apiKey, UserID: alice, SecretHash: hashA, PublicKey: pubA, TeamID: teamID}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if events[0].Schema != domain.KeyTeamSchema {
		t.Errorf("schema: got %d, want %d", events[0].Schema, domain.KeyTeamSchema)
	}
	if err := k.Apply(events[0]); err != nil {
		t.Fatal(err)
	}
	if k.TeamID != teamID || k.CreatedBy() != alice {
		t.Fatalf("got team %q created by %q", k.TeamID, k.CreatedBy())
	}
	if _, err := k.Revoke(alice, t1); domain.KindOf(err) != domain.NotFound {
		t.Errorf("the creator revoking without a role check: got %v, want NotFound", err)
	}
	if _, err := k.Edit(bob, domain.KeyEdit{SetName: true, Name: "x"}, t1); domain.KindOf(err) != domain.NotFound {
		t.Errorf("another user editing: got %v, want NotFound", err)
	}
	handed := k.ForMember(bob)
	events, err = handed.Revoke(bob, t1)
	if err != nil || len(events) != 1 || events[0].Actor != bob {
		t.Fatalf("the member handed the key: got %v, %v, want one event by bob", events, err)
	}
	if _, err := handed.Revoke(alice, t1); domain.KindOf(err) != domain.NotFound {
		t.Errorf("someone else on a key handed to bob: got %v, want NotFound", err)
	}
	var fresh domain.Key
	if _, err := fresh.Create(domain.CreateKey{APIKey: otherAPIKey, UserID: alice, SecretHash: hashA, PublicKey: pubA,
		ServiceAccount: teamSA}, t0); domain.KindOf(err) != domain.Invalid {
		t.Errorf("a service account's key without a team: got %v, want Invalid", err)
	}
}
