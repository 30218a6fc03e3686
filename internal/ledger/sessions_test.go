package ledger_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// TestService_ChangePassword: the current password confirms the change
// (a wrong one is Forbidden and appends nothing), the new one must pass
// the policy, and afterwards the old password fails, the new one works,
// the event keeps the new hash sealed (never in clear), and every earlier
// session of the user ends.
func TestService_ChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	before := currentSession(t, e.svc, alice.ID)
	const newPassword = "a brand new passphrase for alice"

	t.Run("ErrWrongCurrent", func(t *testing.T) {
		e.wantNothingAppended(t, func() {
			err := e.svc.ChangePassword(testContext(t), ledger.ChangePassword{UserID: alice.ID,
				CurrentPassword: password + "!", NewPassword: newPassword})
			wantKind(t, err, domain.Forbidden)
		})
	})
	t.Run("ErrWeakNew", func(t *testing.T) {
		for _, weak := range []string{"short", strings.Repeat("a", 20), "alice@example.com-x"[:17]} {
			e.wantNothingAppended(t, func() {
				err := e.svc.ChangePassword(testContext(t), ledger.ChangePassword{UserID: alice.ID,
					CurrentPassword: password, NewPassword: weak})
				wantKind(t, err, domain.Invalid)
			})
		}
	})
	t.Run("ErrUnknownUser", func(t *testing.T) {
		err := e.svc.ChangePassword(testContext(t), ledger.ChangePassword{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C",
			CurrentPassword: password, NewPassword: newPassword})
		wantKind(t, err, domain.NotFound)
	})

	if err := e.svc.ChangePassword(testContext(t), ledger.ChangePassword{UserID: alice.ID,
		CurrentPassword: password, NewPassword: newPassword}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	last := e.lastEvent(t, domain.CategoryUser, alice.ID)
	d, ok := last.Data.(domain.UserPasswordChanged)
	if !ok || last.Actor != alice.ID || last.Schema != 1 {
		t.Fatalf("got %s schema %d by %s, want user.password_changed schema 1 by alice", last.Type, last.Schema, last.Actor)
	}
	key, err := e.dataKeys.Get(testContext(t), alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := domain.OpenPersonal(key, alice.ID, domain.TypeUserPasswordChanged, 1, d.Personal)
	if err != nil || p.Email != "alice@example.com" || !strings.HasPrefix(p.PasswordHash, "$argon2id$") {
		t.Fatalf("sealed value: got %+v, %v, want alice's email and an argon2id hash", p, err)
	}
	if raw, _ := domain.EncodeEvent(last); strings.Contains(string(raw), "argon2") || strings.Contains(string(raw), "alice@") {
		t.Errorf("the event holds the hash or the email in clear: %s", raw)
	}

	if _, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password}); domain.KindOf(err) != domain.Unauthorized {
		t.Errorf("Login with the old password: got %v, want Unauthorized", err)
	}
	u, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: newPassword})
	if err != nil {
		t.Fatalf("Login with the new password: %v", err)
	}
	if _, err := e.svc.SessionUser(before); domain.KindOf(err) != domain.Unauthorized {
		t.Errorf("a session issued before the change: got %v, want Unauthorized", err)
	}
	if _, err := e.svc.SessionUser(currentSession(t, e.svc, u.ID)); err != nil {
		t.Errorf("a session issued after the change: %v", err)
	}
	if u.SessionEpoch != before.Epoch+1 {
		t.Errorf("epoch: got %d, want %d", u.SessionEpoch, before.Epoch+1)
	}

	t.Run("Again", func(t *testing.T) {
		// The latest sealed value is what counts: a second change checks
		// the current password against the first change's hash.
		if err := e.svc.ChangePassword(testContext(t), ledger.ChangePassword{UserID: alice.ID,
			CurrentPassword: newPassword, NewPassword: newPassword + " two"}); err != nil {
			t.Fatalf("ChangePassword again: %v", err)
		}
		if _, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: newPassword + " two"}); err != nil {
			t.Errorf("Login with the second new password: %v", err)
		}
	})
}

// TestService_Sessions: revocation ends every session of the user, a
// logout only the one it names, and disable ends sessions for good: a
// session issued before a disable stays refused after enable.
func TestService_Sessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")

	t.Run("Logout", func(t *testing.T) {
		one, two := currentSession(t, e.svc, alice.ID), currentSession(t, e.svc, alice.ID)
		two.TokenID = "tok-2"
		if err := e.svc.EndSession(testContext(t), ledger.EndSession{Session: one}); err != nil {
			t.Fatalf("EndSession: %v", err)
		}
		if _, err := e.svc.SessionUser(one); domain.KindOf(err) != domain.Unauthorized {
			t.Errorf("the ended session: got %v, want Unauthorized", err)
		}
		if _, err := e.svc.SessionUser(two); err != nil {
			t.Errorf("another session of the user: %v", err)
		}
		e.wantNothingAppended(t, func() {
			if err := e.svc.EndSession(testContext(t), ledger.EndSession{Session: one}); err != nil {
				t.Errorf("ending it again: got %v, want nil", err)
			}
		})
		expired := two
		expired.TokenID, expired.ExpiresAt = "tok-3", e.svc.Now().Add(-time.Minute)
		e.wantNothingAppended(t, func() {
			if err := e.svc.EndSession(testContext(t), ledger.EndSession{Session: expired}); err != nil {
				t.Errorf("ending an expired session: got %v, want nil", err)
			}
		})
	})

	t.Run("Revoke", func(t *testing.T) {
		s, other := currentSession(t, e.svc, alice.ID), currentSession(t, e.svc, bob.ID)
		if err := e.svc.RevokeSessions(testContext(t), ledger.RevokeSessions{Actor: alice.ID, UserID: alice.ID}); err != nil {
			t.Fatalf("RevokeSessions: %v", err)
		}
		if _, err := e.svc.SessionUser(s); domain.KindOf(err) != domain.Unauthorized {
			t.Errorf("a session issued before the revocation: got %v, want Unauthorized", err)
		}
		if _, err := e.svc.SessionUser(other); err != nil {
			t.Errorf("another user's session: %v", err)
		}
		wantKind(t, e.svc.RevokeSessions(testContext(t), ledger.RevokeSessions{Actor: rootActor,
			UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C"}), domain.NotFound)
	})

	// The finding: a session issued before disable worked again after
	// enable.
	t.Run("DisableThenEnable", func(t *testing.T) {
		s := currentSession(t, e.svc, bob.ID)
		if err := e.svc.DisableUser(testContext(t), ledger.DisableUser{Actor: rootActor, UserID: bob.ID}); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.EnableUser(testContext(t), ledger.EnableUser{Actor: rootActor, UserID: bob.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SessionUser(s); domain.KindOf(err) != domain.Unauthorized {
			t.Errorf("a session issued before disable, after enable: got %v, want Unauthorized", err)
		}
		if _, err := e.svc.SessionUser(currentSession(t, e.svc, bob.ID)); err != nil {
			t.Errorf("a session issued after enable: %v", err)
		}
	})
}

// TestService_ChangePassword_Race: two changes confirmed with the same
// current password cannot both win: the second was checked against a
// password the first replaced, so it fails (Conflict, or Forbidden when it
// starts after the first is in force), and exactly one new password works.
func TestService_ChangePassword_Race(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	candidates := []string{"the first new passphrase of alice", "the second new passphrase of alice"}
	errs := make([]error, len(candidates))
	var wg sync.WaitGroup
	for i, next := range candidates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.svc.ChangePassword(testContext(t), ledger.ChangePassword{UserID: alice.ID,
				CurrentPassword: password, NewPassword: next})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch kind := domain.KindOf(err); {
		case err == nil:
			won++
		case kind != domain.Conflict && kind != domain.Forbidden:
			t.Errorf("change %d: got %v, want nil, Conflict or Forbidden", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("got %d changes in force, want 1 (%v)", won, errs)
	}
	works := 0
	for _, p := range append(candidates, password) {
		if _, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: p}); err == nil {
			works++
		}
	}
	if works != 1 {
		t.Errorf("got %d passwords that log in, want 1", works)
	}
}
