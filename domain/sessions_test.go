package domain_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// registeredAlice returns alice, registered with sealed personal data.
func registeredAlice(t *testing.T) domain.User {
	t.Helper()
	var u domain.User
	mustApply(t, &u, domain.Event{Type: domain.TypeUserRegistered, Schema: 2, Aggregate: alice, Version: 1, Time: t0,
		Actor: alice, Data: domain.UserRegistered{Personal: sampleSealed()}})
	return u
}

func mustApply(t *testing.T, u *domain.User, events ...domain.Event) {
	t.Helper()
	for _, e := range events {
		if err := u.Apply(e); err != nil {
			t.Fatalf("Apply %s: %v", e.Type, err)
		}
	}
}

func mustRecord(t *testing.T, u *domain.User) func([]domain.Event, error) {
	t.Helper()
	return func(events []domain.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		mustApply(t, u, events...)
	}
}

// TestUser_SessionEpoch: every event that ends all sessions moves the
// epoch on, and enabling a disabled user does not move it back: a token
// issued before the user was disabled stays refused after enable.
func TestUser_SessionEpoch(t *testing.T) {
	t.Parallel()
	u := registeredAlice(t)
	if !u.SessionValid(0, "tok") {
		t.Fatalf("SessionValid(0) of a new user: got false, want true")
	}
	record := mustRecord(t, &u)

	record(u.Disable("admin:root", "", t0))
	if u.SessionValid(0, "tok") || u.SessionValid(u.SessionEpoch, "tok") {
		t.Errorf("SessionValid of a disabled user: got true, want false")
	}
	record(u.Enable("admin:root", "", t0))
	if u.SessionValid(0, "tok") {
		t.Errorf("SessionValid of a token issued before disable, after enable: got true, want false")
	}
	if u.SessionEpoch != 1 || !u.SessionValid(1, "tok") {
		t.Errorf("epoch after disable and enable: got %d (valid %v), want 1, valid", u.SessionEpoch, u.SessionValid(1, "tok"))
	}

	record(u.RevokeSessions(alice, "", t0))
	record(u.ChangePassword(samplePasswordSealed(), t0))
	if u.SessionEpoch != 3 || u.SessionValid(2, "tok") || !u.SessionValid(3, "tok") {
		t.Errorf("epoch after revoke and password change: got %d, want 3, only epoch 3 valid", u.SessionEpoch)
	}
	if u.PersonalType != domain.TypeUserPasswordChanged || u.PersonalSchema != 1 || u.Personal != samplePasswordSealed() {
		t.Errorf("sealed value after a password change: got %s/%d, want the change's", u.PersonalType, u.PersonalSchema)
	}

	record(u.Erase(alice, "", t0))
	if u.SessionEpoch != 4 || u.SessionValid(4, "tok") {
		t.Errorf("erased user: epoch %d, valid %v, want 4 and refused", u.SessionEpoch, u.SessionValid(4, "tok"))
	}
	if _, err := u.RevokeSessions(alice, "", t0); domain.KindOf(err) != domain.NotFound {
		t.Errorf("RevokeSessions of an erased user: got %v, want NotFound", err)
	}
	if _, err := u.ChangePassword(samplePasswordSealed(), t0); domain.KindOf(err) != domain.NotFound {
		t.Errorf("ChangePassword of an erased user: got %v, want NotFound", err)
	}
}

func TestUser_ChangePassword(t *testing.T) {
	t.Parallel()
	t.Run("ErrDisabled", func(t *testing.T) {
		u := registeredAlice(t)
		mustRecord(t, &u)(u.Disable("admin:root", "", t0))
		if _, err := u.ChangePassword(samplePasswordSealed(), t0); domain.KindOf(err) != domain.Forbidden {
			t.Errorf("got %v, want Forbidden", err)
		}
	})
	t.Run("ErrNothingSealed", func(t *testing.T) {
		u := registeredAlice(t)
		if _, err := u.ChangePassword("", t0); domain.KindOf(err) != domain.Invalid {
			t.Errorf("got %v, want Invalid", err)
		}
	})
	t.Run("LegacyUser", func(t *testing.T) {
		var u domain.User
		mustApply(t, &u, domain.Event{Type: domain.TypeUserRegistered, Schema: 1, Aggregate: alice, Version: 1, Time: t0,
			Actor: alice, Data: domain.UserRegistered{Email: "alice@example.com", PasswordHash: passwordHash}})
		mustRecord(t, &u)(u.ChangePassword(samplePasswordSealed(), t0))
		if u.PasswordHash != "" {
			t.Errorf("clear hash after a change: got %q, want none (only the sealed one holds)", u.PasswordHash)
		}
	})
}

func TestUser_EndSession(t *testing.T) {
	t.Parallel()
	exp := t0.Add(time.Hour)

	t.Run("OK", func(t *testing.T) {
		u := registeredAlice(t)
		before := u
		mustRecord(t, &u)(u.EndSession("tok-a", exp, t0))
		if u.SessionValid(0, "tok-a") || !u.SessionValid(0, "tok-b") {
			t.Errorf("after ending tok-a: tok-a valid %v, tok-b valid %v, want false, true",
				u.SessionValid(0, "tok-a"), u.SessionValid(0, "tok-b"))
		}
		if !before.SessionValid(0, "tok-a") {
			t.Errorf("a copy taken before the event changed with it: want copy on write")
		}
		if events, err := u.EndSession("tok-a", exp, t0); err != nil || len(events) != 0 {
			t.Errorf("ending it again: got %v, %v, want no events", events, err)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		u := registeredAlice(t)
		if events, err := u.EndSession("tok-a", t0, t0); err != nil || len(events) != 0 {
			t.Errorf("ending an expired token: got %v, %v, want no events", events, err)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		u := registeredAlice(t)
		for _, id := range []string{"", "a b", "é", string(make([]byte, domain.MaxTokenIDLength+1))} {
			if _, err := u.EndSession(id, exp, t0); domain.KindOf(err) != domain.Invalid {
				t.Errorf("EndSession(%q): got %v, want Invalid", id, err)
			}
		}
	})
	// A user logging out over and over cannot grow a reader's memory:
	// past MaxEndedSessions live ended tokens, all sessions end instead,
	// and tokens that expired are dropped.
	t.Run("Bounded", func(t *testing.T) {
		u := registeredAlice(t)
		record := mustRecord(t, &u)
		for i := range domain.MaxEndedSessions {
			record(u.EndSession(fmt.Sprintf("tok-%d", i), exp, t0))
		}
		if len(u.EndedSessions) != domain.MaxEndedSessions || u.SessionEpoch != 0 {
			t.Fatalf("after %d logouts: %d kept, epoch %d, want all kept, epoch 0", domain.MaxEndedSessions, len(u.EndedSessions), u.SessionEpoch)
		}
		record(u.EndSession("one-more", exp, t0))
		if len(u.EndedSessions) != 0 || u.SessionEpoch != 1 || u.SessionValid(0, "other") {
			t.Errorf("one over the bound: %d kept, epoch %d, want none kept, epoch 1", len(u.EndedSessions), u.SessionEpoch)
		}
		record(u.EndSession("tok-x", exp, t0))
		record(u.EndSession("tok-y", exp.Add(time.Hour), exp)) // tok-x expired by now
		if _, kept := u.EndedSessions["tok-x"]; kept || len(u.EndedSessions) != 1 {
			t.Errorf("expired ended token: got %v kept, want dropped", u.EndedSessions)
		}
	})
}
