package ledger_test

import (
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestService_Teams: a user is in at most domain.MaxTeamsPerUser teams,
// and an erased user leaves every team, the last owner too, while the
// team's keys stay.
func TestService_Teams(t *testing.T) {
	t.Parallel()
	l := ledgertest.New(t, natstest.Connect(t, natstest.RunServer(t)), eventstore.WithMemoryStorage())
	ctx := ledgertest.Context(t)
	owner, dev := l.Register(t), l.Register(t)
	var first domain.Team
	for i := range domain.MaxTeamsPerUser {
		team, err := l.Service.CreateTeam(ctx, ledger.CreateTeam{UserID: owner.ID, Name: "team"})
		if err != nil {
			t.Fatalf("team %d: %v", i+1, err)
		}
		if i == 0 {
			first = team
		}
	}
	if _, err := l.Service.CreateTeam(ctx, ledger.CreateTeam{UserID: owner.ID, Name: "one too many"}); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("one team past the bound: got %v, want Conflict", err)
	}
	inv, err := l.Service.InviteMember(ctx, ledger.InviteMember{UserID: owner.ID, TeamID: first.ID, Role: domain.TeamDeveloper})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Service.JoinTeam(ctx, ledger.JoinTeam{UserID: dev.ID, Token: inv.Token.Reveal()}); err != nil {
		t.Fatal(err)
	}
	k, _, err := l.Service.CreateKey(ctx, ledger.CreateKey{UserID: dev.ID, TeamID: first.ID, Name: "ci"})
	if err != nil || k.TeamID != first.ID || k.UserID != dev.ID {
		t.Fatalf("CreateKey for the team: got %+v, %v", k, err)
	}
	if _, err := l.Service.EraseUser(ctx, ledger.EraseUser{Actor: "admin:root", UserID: owner.ID}); err != nil {
		t.Fatal(err)
	}
	if got := l.Service.Teams(owner.ID); len(got) != 0 {
		t.Errorf("an erased user's teams: got %d, want none", len(got))
	}
	team, err := l.Service.Team(dev.ID, first.ID)
	if err != nil || team.Owners() != 0 || len(team.Members) != 1 {
		t.Errorf("the team of an erased last owner: got %+v, %v, want it kept with dev alone", team, err)
	}
	if got, err := l.Service.GetKey(dev.ID, k.APIKey); err != nil || got.Revoked() {
		t.Errorf("the team's key after the erasure: got %+v, %v, want it unrevoked", got, err)
	}
}
