package projections_test

import (
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

func newTeamID() string { return domain.TeamIDPrefix + ulid.Make().String() }

func newServiceAccountID() string { return domain.ServiceAccountIDPrefix + ulid.Make().String() }

// teamEvent is event version of a team.
func teamEvent(team string, version uint64, d domain.EventData) domain.Event {
	return domain.Event{Type: d.EventType(), Schema: 1, Aggregate: team, Version: version,
		Time: t0.Add(time.Duration(version) * time.Minute), Actor: "admin:root", Data: d}
}

// TestLookup_TeamKeys: a team's key answers its team (and service
// account); a disabled team or service account stops it, a deleted
// account for good; its creator being disabled does not.
func TestLookup_TeamKeys(t *testing.T) {
	t.Parallel()
	creator, team, sa := newUserID(), newTeamID(), newServiceAccountID()
	secret := lookupSecret(t, 3)
	teamKey, saKey, own := newAPIKey(), newAPIKey(), newAPIKey()
	created := func(apiKey, account string) domain.Event {
		e := keyCreated(apiKey, creator, 1)
		d := e.Data.(domain.KeyCreated)
		d.SecretHash = secret.Hash()
		if account != "-" {
			d.TeamID, d.ServiceAccount = team, account
			e.Schema = domain.KeyTeamSchema
		}
		e.Data = d
		return e
	}
	l := projections.NewLookup(0)
	apply := func(events ...domain.Event) {
		t.Helper()
		for _, e := range events {
			if err := l.Apply(e); err != nil {
				t.Fatalf("Apply %s: %v", e.Type, err)
			}
		}
	}
	check := func(what, apiKey string, want domain.Reason) projections.Result {
		t.Helper()
		res := l.Check(apiKey, secret, t0.Add(time.Hour))
		if res.Reason != want {
			t.Errorf("%s: got %s, want %s", what, res.Reason, want)
		}
		return res
	}
	apply(created(teamKey, ""), created(saKey, sa), created(own, "-"))
	if res := check("team key", teamKey, domain.ReasonOK); res.TeamID != team || res.UserID != creator || res.ServiceAccount != "" {
		t.Errorf("team key: got %+v", res)
	}
	if res := check("service account key", saKey, domain.ReasonOK); res.TeamID != team || res.ServiceAccount != sa {
		t.Errorf("service account key: got %+v", res)
	}
	if res := check("own key", own, domain.ReasonOK); res.TeamID != "" {
		t.Errorf("own key: got %+v", res)
	}
	apply(domain.Event{Type: domain.TypeUserDisabled, Schema: 1, Aggregate: creator, Version: 2, Time: t0, Actor: "admin:root",
		Data: domain.UserDisabled{}})
	check("team key of a disabled creator", teamKey, domain.ReasonOK)
	check("own key of a disabled user", own, domain.ReasonUserDisabled)

	apply(teamEvent(team, 1, domain.TeamDisabled{}))
	check("key of a disabled team", teamKey, domain.ReasonUserDisabled)
	check("service account key of a disabled team", saKey, domain.ReasonUserDisabled)
	apply(teamEvent(team, 2, domain.TeamEnabled{}))
	check("key of a re-enabled team", teamKey, domain.ReasonOK)

	apply(teamEvent(team, 3, domain.TeamServiceAccountDisabled{ServiceAccount: sa}))
	check("key of a disabled service account", saKey, domain.ReasonUserDisabled)
	check("other team key", teamKey, domain.ReasonOK)
	apply(teamEvent(team, 4, domain.TeamServiceAccountDeleted{ServiceAccount: sa}),
		teamEvent(team, 5, domain.TeamServiceAccountEnabled{ServiceAccount: sa}))
	check("key of a deleted service account", saKey, domain.ReasonUserDisabled)
	// A later change of the key keeps its team.
	apply(keyRevoked(own, creator, 2, 9))
	apply(domain.Event{Type: domain.TypeKeyRenamed, Schema: 1, Aggregate: teamKey, Version: 2, Time: t0, Actor: creator,
		Data: domain.KeyRenamed{Name: "renamed"}})
	if res := check("renamed team key", teamKey, domain.ReasonOK); res.TeamID != team || res.Name != "renamed" {
		t.Errorf("renamed team key: got %+v", res)
	}
}

// TestTeams_Model: the teams read model follows members in and out and
// the open invitations, and lists a team's keys apart from the creator's.
func TestTeams_Model(t *testing.T) {
	t.Parallel()
	owner, dev := newUserID(), newUserID()
	team := newTeamID()
	inv := domain.TeamInvitationIDPrefix + ulid.Make().String()
	m := projections.NewTeams()
	keys := projections.NewKeys()
	for _, e := range []domain.Event{
		teamEvent(team, 1, domain.TeamCreated{Name: "Payments", Owner: owner}),
		teamEvent(team, 2, domain.TeamInvitationIssued{Invitation: inv, Role: domain.TeamDeveloper, ExpiresAt: t0.Add(time.Hour)}),
	} {
		if err := m.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.ByInvitation(inv); got != team {
		t.Errorf("ByInvitation: got %q, want %q", got, team)
	}
	if err := m.Apply(teamEvent(team, 3, domain.TeamMemberJoined{UserID: dev, Role: domain.TeamDeveloper, Invitation: inv})); err != nil {
		t.Fatal(err)
	}
	if got := m.ByInvitation(inv); got != "" {
		t.Errorf("ByInvitation of a used invitation: got %q, want none", got)
	}
	if got := m.OfUser(dev); len(got) != 1 || got[0].ID != team {
		t.Errorf("OfUser(dev): got %v", got)
	}
	if err := m.Apply(teamEvent(team, 4, domain.TeamMemberRemoved{UserID: dev})); err != nil {
		t.Fatal(err)
	}
	if got := m.OfUser(dev); len(got) != 0 {
		t.Errorf("OfUser(dev) after removal: got %v", got)
	}
	k := keyCreated(newAPIKey(), dev, 5)
	d := k.Data.(domain.KeyCreated)
	d.TeamID = team
	k.Data, k.Schema = d, domain.KeyTeamSchema
	if err := keys.Apply(k); err != nil {
		t.Fatal(err)
	}
	if own, _, _ := keys.ListByUser(dev, 10, ""); len(own) != 0 {
		t.Errorf("ListByUser of the creator: got %d keys, want the team's key not among them", len(own))
	}
	if got, _, _ := keys.ListByTeam(team, 10, ""); len(got) != 1 || keys.TeamActiveCount(team) != 1 || keys.ActiveCount(dev) != 0 {
		t.Errorf("ListByTeam: got %d keys", len(got))
	}
}
