package domain_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

const (
	teamID  = "tm_01JH6Z3Q8X4N6V2R9T5M7K3B5A"
	teamInv = "tmi_01JH6Z3Q8X4N6V2R9T5M7K3B5B"
	teamSA  = "sa_01JH6Z3Q8X4N6V2R9T5M7K3B5C"
)

// teamSampleEvents holds one event of every type teams added, with every
// field set: key.created of schema 5 (testdata/events/v5) first, then the
// team events of schema 1 (testdata/events/v1).
func teamSampleEvents() []domain.Event {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ev := func(n int, d domain.EventData, actor string) domain.Event {
		return domain.Event{ID: "01JH6Z3Q8X4N6V2R9T5M7K3C" + string(rune('A'+n)), Type: d.EventType(), Schema: domain.SchemaFor(d),
			Aggregate: teamID, Version: uint64(n + 1), Time: at.Add(time.Duration(n) * time.Minute), Actor: actor,
			Prev: domain.Hash{0: byte(0x50 + n), 31: byte(n)}, Data: d}
	}
	created := ev(0, domain.TeamCreated{Name: "Payments", Owner: alice}, alice)
	created.Prev = domain.Hash{}
	transferred := ev(11, domain.TeamOwnershipTransferred{UserID: bob, Reason: "alice left"}, "admin:root")
	transferred.Request = sampleRequest()
	disabled := ev(9, domain.TeamDisabled{Reason: "abuse"}, "admin:root")
	disabled.Request = sampleRequest()
	enabled := ev(10, domain.TeamEnabled{Reason: "resolved"}, "admin:root")
	enabled.Request = sampleRequest()
	return []domain.Event{
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B5D", Type: domain.TypeKeyCreated, Schema: 5, Aggregate: apiKey,
			Version: 1, Time: at, Actor: alice,
			Data: domain.KeyCreated{UserID: alice, Name: "ci", SecretHash: secretVectorHash(),
				PublicKey: domain.PublicKey{0: 0xee, 31: 0x05}, Scopes: []string{"orders:read"},
				RateLimit: &domain.RateLimit{Limit: 10, Window: domain.Period(time.Second)},
				TeamID:    teamID, ServiceAccount: teamSA},
		},
		created,
		ev(1, domain.TeamInvitationIssued{Invitation: teamInv, Role: domain.TeamDeveloper, TokenHash: domain.Hash{0: 0x77, 31: 0x07},
			ExpiresAt: at.Add(7 * 24 * time.Hour)}, alice),
		ev(2, domain.TeamMemberJoined{UserID: bob, Role: domain.TeamDeveloper, Invitation: teamInv}, bob),
		ev(3, domain.TeamMemberRoleChanged{UserID: bob, Role: domain.TeamAdmin}, alice),
		ev(4, domain.TeamServiceAccountCreated{ServiceAccount: teamSA, Name: "ci"}, bob),
		ev(5, domain.TeamServiceAccountDisabled{ServiceAccount: teamSA, Reason: "rotating"}, bob),
		ev(6, domain.TeamServiceAccountEnabled{ServiceAccount: teamSA, Reason: "rotated"}, bob),
		ev(7, domain.TeamServiceAccountDeleted{ServiceAccount: teamSA, Reason: "retired"}, alice),
		ev(8, domain.TeamMemberRemoved{UserID: bob, Reason: "erased"}, "admin:root"),
		disabled, enabled, transferred,
	}
}

// teamEventChecks are the checks of the frozen schema 1 team samples, run
// by TestVersion1Events.
func teamEventChecks() map[string]func(t *testing.T, e domain.Event) {
	samples := teamSampleEvents()[1:]
	checks := map[string]func(t *testing.T, e domain.Event){}
	for _, want := range samples {
		checks[want.Type] = func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, want.ID, want.Type, teamID, want.Version, want.Time.Format(time.RFC3339Nano), want.Actor)
			checkField(t, "Prev", e.Prev, want.Prev)
			checkField(t, "Data", e.Data, want.Data)
			if want.Request != nil {
				checkRequest(t, e.Request)
			}
		}
	}
	return checks
}

// TestVersion5Events decodes the schema-5 key.created committed under
// testdata/events/v5, which added the team that owns a key. Like
// TestVersion1Events, it guards the log as written.
func TestVersion5Events(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "events", "v5")
	if *update {
		writeMissingGolden(t, dir, teamSampleEvents()[:1])
	}
	checks := map[string]func(t *testing.T, e domain.Event){
		"key.created": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B5D", "key.created", apiKey, 1, "2026-12-06T12:00:00Z", alice)
			d, ok := e.Data.(domain.KeyCreated)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyCreated", e.Data)
			}
			checkField(t, "UserID", d.UserID, alice)
			checkField(t, "TeamID", d.TeamID, teamID)
			checkField(t, "ServiceAccount", d.ServiceAccount, teamSA)
			checkField(t, "Name", d.Name, "ci")
			if d.RateLimit == nil {
				t.Fatal("RateLimit: got nil, want 10 a second")
			}
		},
	}
	checkFrozenEvents(t, dir, 5, checks)
}

// TestKeyCreated_TeamSchema: a team's key is written as schema 5 whether
// it has limits or not, a user's key keeps schema 3 or 4, and schemas 3
// and 4 never carry a team: a stray team_id in an older event is not
// believed (the event is refused, not read as the user's key).
func TestKeyCreated_TeamSchema(t *testing.T) {
	t.Parallel()
	base := domain.KeyCreated{UserID: alice, SecretHash: hashA, PublicKey: pubA}
	team := base
	team.TeamID = teamID
	checkField(t, "user key", domain.SchemaFor(base), domain.KeyPolicySchema)
	checkField(t, "team key", domain.SchemaFor(team), domain.KeyTeamSchema)
	for _, schema := range []string{"3", "4"} {
		in := `{"id":"x","type":"key.created","schema":` + schema + `,"aggregate":"` + apiKey + `","version":1,"time":"2026-11-01T00:00:00Z","actor":"u","data":{"user_id":"` + alice + `","secret_hash":"` + secretVectorHashHex + `","public_key":"` + pubHex(pubA) + `","rate_limit":{"limit":1,"window":"1s"},"team_id":"` + teamID + `"}}`
		e, err := domain.DecodeEvent([]byte(in))
		if err != nil {
			continue // refused: fine
		}
		if d := e.Data.(domain.KeyCreated); d.TeamID != "" {
			t.Errorf("schema %s: got team %q, want none believed", schema, d.TeamID)
		}
	}
	in := `{"id":"x","type":"key.created","schema":5,"aggregate":"` + apiKey + `","version":1,"time":"2026-11-01T00:00:00Z","actor":"u","data":{"user_id":"` + alice + `","secret_hash":"` + secretVectorHashHex + `","public_key":"` + pubHex(pubA) + `"}}`
	if _, err := domain.DecodeEvent([]byte(in)); err == nil || errors.Is(err, domain.ErrUnknownEventType) {
		t.Errorf("schema 5 without a team: got %v, want bad data", err)
	}
}

func pubHex(p domain.PublicKey) string {
	b, _ := p.MarshalText()
	return string(b)
}
