package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// identityAggregate is the sample identity's aggregate: the identity
// "https://id.example.com" / "248289761001" under the key of 32 0x07 bytes.
var identityAggregate = domain.IdentityAggregate(make32(0x07), "https://id.example.com", "248289761001")

func make32(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

// identitySampleEvents are the frozen identity events, schema 1.
func identitySampleEvents() []domain.Event {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	return []domain.Event{
		{ID: "01JH6Z3Q8X4N6V2R9T5M7K3B4A", Type: domain.TypeIdentityLinked, Schema: 1, Aggregate: identityAggregate,
			Version: 1, Time: at, Actor: alice, Data: domain.IdentityLinked{UserID: alice}},
	}
}

// identityEventChecks are the checks of the frozen identity samples, run
// by TestVersion1Events.
func identityEventChecks() map[string]func(t *testing.T, e domain.Event) {
	return map[string]func(t *testing.T, e domain.Event){
		"identity.linked": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B4A", "identity.linked",
				"12d82e842e6165bfaef238fbb92badab6f14d9e0cd44455ddb0def3351a8cbfc", 1, "2026-12-06T10:00:00Z", alice)
			d, ok := e.Data.(domain.IdentityLinked)
			if !ok {
				t.Fatalf("Data: got %T, want domain.IdentityLinked", e.Data)
			}
			checkField(t, "UserID", d.UserID, alice)
		},
	}
}

func TestIdentityAggregate(t *testing.T) {
	t.Parallel()
	key := make32(0x07)
	a := domain.IdentityAggregate(key, "https://id.example.com", "248289761001")
	// Frozen: logs hold these ids, and a change would free every linked
	// identity.
	checkField(t, "IdentityAggregate", a, "12d82e842e6165bfaef238fbb92badab6f14d9e0cd44455ddb0def3351a8cbfc")
	for name, other := range map[string]string{
		"other subject": domain.IdentityAggregate(key, "https://id.example.com", "248289761002"),
		"other issuer":  domain.IdentityAggregate(key, "https://id.example.org", "248289761001"),
		"other key":     domain.IdentityAggregate(make32(0x08), "https://id.example.com", "248289761001"),
		// The separator keeps "ab"+"c" apart from "a"+"bc".
		"shifted": domain.IdentityAggregate(key, "https://id.example.com2", "48289761001"),
		// An email reservation of the same text is another aggregate.
		"email": domain.EmailAggregate(key, "https://id.example.com\x00248289761001"),
	} {
		if other == a {
			t.Errorf("%s: got the same aggregate %s, want another", name, a)
		}
	}
}

func TestValidateIdentity(t *testing.T) {
	t.Parallel()
	if err := domain.ValidateIdentity("https://id.example.com", "248289761001"); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	for name, c := range map[string][2]string{
		"empty issuer":  {"", "s"},
		"empty subject": {"https://i", ""},
		"NUL":           {"https://i", "a\x00b"},
		"newline":       {"https://i\n", "s"},
		"long subject":  {"https://i", strings.Repeat("s", domain.MaxSubjectLength+1)},
		"long issuer":   {"https://" + strings.Repeat("i", domain.MaxIssuerLength), "s"},
		"invalid UTF-8": {"https://i", "\xff"},
	} {
		if err := domain.ValidateIdentity(c[0], c[1]); domain.KindOf(err) != domain.Invalid {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}

func TestLink(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	t.Run("OK", func(t *testing.T) {
		events, err := domain.Link(domain.LinkIdentity{Aggregate: identityAggregate, UserID: alice}, at)
		if err != nil || len(events) != 1 {
			t.Fatalf("got %v, %v, want one event", events, err)
		}
		e := events[0]
		checkField(t, "Type", e.Type, domain.TypeIdentityLinked)
		checkField(t, "Version", e.Version, uint64(1))
		checkField(t, "Actor", e.Actor, alice)
		checkField(t, "UserID", e.Data.(domain.IdentityLinked).UserID, alice)
	})
	t.Run("FollowsErasedHolder", func(t *testing.T) {
		prev := domain.Hash{0: 9}
		events, err := domain.Link(domain.LinkIdentity{Aggregate: identityAggregate, UserID: alice,
			Identity: domain.Reservation{Version: 1, LastHash: prev}}, at)
		if err != nil {
			t.Fatal(err)
		}
		checkField(t, "Version", events[0].Version, uint64(2))
		checkField(t, "Prev", events[0].Prev, prev)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, cmd := range []domain.LinkIdentity{
			{Aggregate: "not hex", UserID: alice},
			{Aggregate: identityAggregate, UserID: "bob"},
		} {
			if _, err := domain.Link(cmd, at); domain.KindOf(err) != domain.Invalid {
				t.Errorf("%+v: got %v, want Invalid", cmd, err)
			}
		}
	})
	t.Run("DecodeRefusesMalformedUser", func(t *testing.T) {
		b := []byte(`{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B4A","type":"identity.linked","schema":1,"aggregate":"` +
			identityAggregate + `","version":1,"time":"2026-12-06T10:00:00Z","actor":"x","data":{"user_id":"nobody"}}`)
		if _, err := domain.DecodeEvent(b); err == nil {
			t.Fatal("got nil, want an error for a link to a malformed user id")
		}
	})
}
