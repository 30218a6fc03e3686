package ledger_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

func (e *env) preset(t *testing.T) ledger.Preset {
	t.Helper()
	p, err := e.svc.NewPreset()
	if err != nil {
		t.Fatalf("NewPreset: %v", err)
	}
	return p
}

// wantAppended runs f and fails unless the log grew by exactly n.
func (e *env) wantAppended(t *testing.T, n uint64, f func()) {
	t.Helper()
	head := e.head(t)
	f()
	if got := e.head(t); got != head+n {
		t.Errorf("got head %d, want %d (%d appended)", got, head+n, n)
	}
}

// Each command run twice with one Preset: the second run is what a retry
// after a crash does (the first run's append stored, its response lost).
// The read models show the first run by then, so the second recognises it
// whatever JetStream's duplicate window says.
func TestService_Preset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")

	t.Run("CreateKey", func(t *testing.T) {
		p := e.preset(t)
		var first, again domain.Key
		var s1, s2 domain.Secret
		e.wantAppended(t, 1, func() {
			var err error
			if first, s1, err = e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: "ci", Preset: p}); err != nil {
				t.Fatal(err)
			}
			if again, s2, err = e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: "ci", Preset: p}); err != nil {
				t.Fatalf("second run: %v", err)
			}
		})
		if first.APIKey != p.APIKey || again.APIKey != p.APIKey || s1.Reveal() != p.Secret.Reveal() || s2.Reveal() != p.Secret.Reveal() {
			t.Errorf("got keys %s, %s, want both %s with the preset's secret", first.APIKey, again.APIKey, p.APIKey)
		}
		if first.CreatedAt != again.CreatedAt || first.Version != again.Version {
			t.Errorf("got %+v then %+v, want the same key", first, again)
		}
		if ev := e.lastEvent(t, domain.CategoryKey, p.APIKey); ev.ID != p.EventIDs[0] {
			t.Errorf("event id: got %s, want the preset's %s", ev.ID, p.EventIDs[0])
		}
		if got := e.validate(t, p.APIKey, p.Secret); got != "ok" {
			t.Errorf("Validate: got %q, want ok", got)
		}

		t.Run("ErrOtherOwner", func(t *testing.T) {
			// The same preset for another user: the key id is taken.
			e.wantNothingAppended(t, func() {
				_, _, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: bob.ID, Name: "ci", Preset: p})
				wantKind(t, err, domain.Conflict)
			})
		})
		t.Run("ErrOtherSecret", func(t *testing.T) {
			q := p
			q.Secret = e.preset(t).Secret
			e.wantNothingAppended(t, func() {
				_, _, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: "ci", Preset: q})
				wantKind(t, err, domain.Conflict)
			})
		})
	})

	t.Run("RegenerateSecret", func(t *testing.T) {
		k, old := e.createKey(t, alice.ID)
		p := e.preset(t)
		e.wantAppended(t, 1, func() {
			for i := range 2 {
				s, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey, Preset: p})
				if err != nil {
					t.Fatalf("run %d: %v", i+1, err)
				}
				if s.Reveal() != p.Secret.Reveal() {
					t.Errorf("run %d: got another secret than the preset's", i+1)
				}
			}
		})
		if got := e.validate(t, k.APIKey, old); got != "wrong_secret" {
			t.Errorf("old secret: got %q, want wrong_secret", got)
		}
		if got := e.validate(t, k.APIKey, p.Secret); got != "ok" {
			t.Errorf("preset secret: got %q, want ok", got)
		}
		if ev := e.lastEvent(t, domain.CategoryKey, k.APIKey); ev.ID != p.EventIDs[0] {
			t.Errorf("event id: got %s, want the preset's %s", ev.ID, p.EventIDs[0])
		}

		t.Run("AfterRevoke", func(t *testing.T) {
			// The first run's effect stands even once the key is revoked:
			// the retry answers as the first run did.
			if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
				t.Fatal(err)
			}
			e.wantNothingAppended(t, func() {
				if _, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey, Preset: p}); err != nil {
					t.Errorf("got %v, want the earlier run recognised", err)
				}
			})
		})
		t.Run("ErrOtherUser", func(t *testing.T) {
			e.wantNothingAppended(t, func() {
				_, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: bob.ID, APIKey: k.APIKey, Preset: p})
				wantKind(t, err, domain.NotFound)
			})
		})
	})

	t.Run("RevokeKey", func(t *testing.T) {
		k, _ := e.createKey(t, alice.ID)
		p := e.preset(t)
		e.wantAppended(t, 1, func() {
			for i := range 2 {
				if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey, Preset: p}); err != nil {
					t.Fatalf("run %d: %v", i+1, err)
				}
			}
		})
		if ev := e.lastEvent(t, domain.CategoryKey, k.APIKey); ev.ID != p.EventIDs[0] || ev.Type != domain.TypeKeyRevoked {
			t.Errorf("got %s %s, want key.revoked with the preset's id %s", ev.Type, ev.ID, p.EventIDs[0])
		}
	})

	t.Run("RegisterUser", func(t *testing.T) {
		p := e.preset(t)
		var first, again domain.User
		e.wantAppended(t, 2, func() { // the email reservation and the user
			var err error
			if first, err = e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "Carol@Example.com", Password: password, Preset: p}); err != nil {
				t.Fatal(err)
			}
			// The same registration, password hashed afresh.
			if again, err = e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: " carol@example.com", Password: password, Preset: p}); err != nil {
				t.Fatalf("second run: %v", err)
			}
		})
		if first.ID != p.UserID || again.ID != p.UserID || again.Email != "carol@example.com" || first.CreatedAt != again.CreatedAt {
			t.Errorf("got %+v then %+v, want user %s both times", first, again, p.UserID)
		}
		if ev := e.lastEvent(t, domain.CategoryUser, p.UserID); ev.ID != p.EventIDs[1] {
			t.Errorf("user event id: got %s, want the preset's %s", ev.ID, p.EventIDs[1])
		}
		if ev := e.lastEvent(t, domain.CategoryEmail, e.emailAggregate(t, "carol@example.com")); ev.ID != p.EventIDs[0] {
			t.Errorf("email event id: got %s, want the preset's %s", ev.ID, p.EventIDs[0])
		}

		t.Run("ErrEmailTaken", func(t *testing.T) {
			// Another registration of the address: still taken.
			e.wantNothingAppended(t, func() {
				_, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "carol@example.com", Password: password, Preset: e.preset(t)})
				wantKind(t, err, domain.Conflict)
			})
		})
		t.Run("ErrOtherEmail", func(t *testing.T) {
			// The same preset with another address: the user id is taken, so
			// the atomic batch is refused as a whole.
			e.wantNothingAppended(t, func() {
				_, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "dave@example.com", Password: password, Preset: p})
				wantKind(t, err, domain.Conflict)
			})
			if _, ok := e.byEmail(t, "dave@example.com"); ok {
				t.Errorf("dave@example.com registered, want not")
			}
		})
	})
}

func TestPreset_Binary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.preset(t)
	if len(p.EventIDs) < 2 || !domain.ValidAPIKey(p.APIKey) || !domain.ValidUserID(p.UserID) || p.Secret.IsZero() {
		t.Fatalf("NewPreset: got %v, want every field drawn", p)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got ledger.Preset
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.EventIDs, ",") != strings.Join(p.EventIDs, ",") || got.APIKey != p.APIKey ||
		got.UserID != p.UserID || got.Secret.Reveal() != p.Secret.Reveal() {
		t.Errorf("round trip: got %v, want %v", got, p)
	}

	t.Run("Redacted", func(t *testing.T) {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if s := fmt.Sprintf(verb, p); strings.Contains(s, p.Secret.Reveal()) {
				t.Errorf("fmt %s shows the secret: %s", verb, s)
			}
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		for name, in := range map[string]string{
			"JSON":    `{`,
			"Secret":  `{"secret":"sk_not_a_secret"}`,
			"APIKey":  `{"api_key":"ak_nope"}`,
			"UserID":  `{"user_id":"usr_nope"}`,
			"EventID": `{"event_ids":["nope"]}`,
		} {
			var q ledger.Preset
			err := q.UnmarshalBinary([]byte(in))
			if err == nil {
				t.Errorf("%s: got nil, want an error", name)
			} else if strings.Contains(err.Error(), "sk_not_a_secret") {
				t.Errorf("%s: error %v holds the input secret", name, err)
			}
		}
	})
}
