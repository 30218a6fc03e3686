package ledger_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

const rootActor = "admin:root"

// lastEvent returns the newest event of an aggregate.
func (e *env) lastEvent(t *testing.T, category, aggregate string) domain.Event {
	t.Helper()
	events := e.load(t, category, aggregate)
	if len(events) == 0 {
		t.Fatalf("got no events for %s %s", category, aggregate)
	}
	return events[len(events)-1]
}

// wantNothingAppended runs f and fails if the log grew meanwhile.
func (e *env) wantNothingAppended(t *testing.T, f func()) {
	t.Helper()
	head := e.head(t)
	f()
	if got := e.head(t); got != head {
		t.Errorf("got head %d, want %d (nothing appended)", got, head)
	}
}

func keyIDs(keys []domain.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.APIKey
	}
	return out
}

func TestService_AdminRevokeKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")

	t.Run("OK", func(t *testing.T) {
		k, secret := e.createKey(t, alice.ID)
		e.clock.Advance(time.Second)
		if err := e.svc.AdminRevokeKey(testContext(t), ledger.AdminRevokeKey{Actor: rootActor, APIKey: k.APIKey, Reason: "leaked in a public repo"}); err != nil {
			t.Fatalf("AdminRevokeKey: %v", err)
		}
		if got := e.validate(t, k.APIKey, secret); got != string(domain.StatusRevoked) {
			t.Errorf("Check: got %q, want revoked", got)
		}
		got, err := e.svc.GetKey(alice.ID, k.APIKey)
		if err != nil || !got.RevokedAt.Equal(e.clock.Now()) {
			t.Errorf("GetKey: got revoked at %v (%v), want %v", got.RevokedAt, err, e.clock.Now())
		}
		ev := e.lastEvent(t, domain.CategoryKey, k.APIKey)
		d, ok := ev.Data.(domain.KeyRevoked)
		if ev.Type != domain.TypeKeyRevoked || ev.Actor != rootActor || !ok || d.Reason != "leaked in a public repo" {
			t.Errorf("got %s by %q with %+v, want key.revoked by %s with the reason", ev.Type, ev.Actor, ev.Data, rootActor)
		}

		t.Run("Twice", func(t *testing.T) {
			e.wantNothingAppended(t, func() {
				if err := e.svc.AdminRevokeKey(testContext(t), ledger.AdminRevokeKey{Actor: rootActor, APIKey: k.APIKey, Reason: "again"}); err != nil {
					t.Errorf("got %v, want nil", err)
				}
			})
		})
	})

	t.Run("ErrUnknownKey", func(t *testing.T) {
		e.wantNothingAppended(t, func() {
			wantKind(t, e.svc.AdminRevokeKey(testContext(t), ledger.AdminRevokeKey{Actor: rootActor, APIKey: newAPIKey(), Reason: "r"}), domain.NotFound)
		})
	})

	t.Run("ErrLongReason", func(t *testing.T) {
		k, secret := e.createKey(t, alice.ID)
		e.wantNothingAppended(t, func() {
			reason := strings.Repeat("r", domain.MaxReasonLength+1)
			wantKind(t, e.svc.AdminRevokeKey(testContext(t), ledger.AdminRevokeKey{Actor: rootActor, APIKey: k.APIKey, Reason: reason}), domain.Invalid)
		})
		if got := e.validate(t, k.APIKey, secret); got != "ok" {
			t.Errorf("Check: got %q, want ok", got)
		}
	})
}

func TestService_DisableUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")
	k1, s1 := e.createKey(t, alice.ID)
	k2, s2 := e.createKey(t, alice.ID)
	kb, sb := e.createKey(t, bob.ID)

	if err := e.svc.DisableUser(testContext(t), ledger.DisableUser{Actor: rootActor, UserID: alice.ID, Reason: "account compromised"}); err != nil {
		t.Fatalf("DisableUser: %v", err)
	}

	t.Run("Recorded", func(t *testing.T) {
		ev := e.lastEvent(t, domain.CategoryUser, alice.ID)
		d, ok := ev.Data.(domain.UserDisabled)
		if ev.Type != domain.TypeUserDisabled || ev.Actor != rootActor || !ok || d.Reason != "account compromised" {
			t.Errorf("got %s by %q with %+v, want user.disabled by %s with the reason", ev.Type, ev.Actor, ev.Data, rootActor)
		}
	})

	t.Run("LoginRefusedLikeWrongPassword", func(t *testing.T) {
		_, disabled := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password})
		_, wrong := e.svc.Login(testContext(t), ledger.Login{Email: "bob@example.com", Password: password + "!"})
		wantKind(t, disabled, domain.Unauthorized)
		wantKind(t, wrong, domain.Unauthorized)
		if disabled.Error() != wrong.Error() || domain.MessageOf(disabled) != domain.MessageOf(wrong) {
			t.Errorf("got %q for a disabled user and %q for a wrong password, want the same", disabled, wrong)
		}
	})

	t.Run("SessionRefused", func(t *testing.T) {
		_, err := e.svc.SessionUser(currentSession(t, e.svc, alice.ID))
		wantKind(t, err, domain.Unauthorized)
		if u, err := e.svc.SessionUser(currentSession(t, e.svc, bob.ID)); err != nil || u.ID != bob.ID {
			t.Errorf("bob: got %v, %v, want bob", u.ID, err)
		}
	})

	t.Run("KeysRefused", func(t *testing.T) {
		for _, c := range []struct {
			key    string
			secret domain.Secret
			want   string
		}{{k1.APIKey, s1, "user_disabled"}, {k2.APIKey, s2, "user_disabled"}, {kb.APIKey, sb, "ok"}} {
			if got := e.validate(t, c.key, c.secret); got != c.want {
				t.Errorf("Check(%s): got %q, want %q", c.key, got, c.want)
			}
		}
	})

	t.Run("Twice", func(t *testing.T) {
		e.wantNothingAppended(t, func() {
			if err := e.svc.DisableUser(testContext(t), ledger.DisableUser{Actor: rootActor, UserID: alice.ID, Reason: "again"}); err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	})

	t.Run("ErrUnknownUser", func(t *testing.T) {
		e.wantNothingAppended(t, func() {
			wantKind(t, e.svc.DisableUser(testContext(t), ledger.DisableUser{Actor: rootActor, UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Reason: "r"}), domain.NotFound)
		})
	})

	t.Run("EnableUser", func(t *testing.T) {
		if err := e.svc.EnableUser(testContext(t), ledger.EnableUser{Actor: rootActor, UserID: alice.ID, Reason: "cleared"}); err != nil {
			t.Fatalf("EnableUser: %v", err)
		}
		ev := e.lastEvent(t, domain.CategoryUser, alice.ID)
		if d, ok := ev.Data.(domain.UserEnabled); ev.Type != domain.TypeUserEnabled || ev.Actor != rootActor || !ok || d.Reason != "cleared" {
			t.Errorf("got %s by %q with %+v, want user.enabled by %s with the reason", ev.Type, ev.Actor, ev.Data, rootActor)
		}
		if u, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password}); err != nil || u.ID != alice.ID {
			t.Errorf("Login: got %v, %v, want alice", u.ID, err)
		}
		if u, err := e.svc.SessionUser(currentSession(t, e.svc, alice.ID)); err != nil || u.ID != alice.ID {
			t.Errorf("SessionUser: got %v, %v, want alice", u.ID, err)
		}
		for _, c := range []struct {
			key    string
			secret domain.Secret
		}{{k1.APIKey, s1}, {k2.APIKey, s2}} {
			if got := e.validate(t, c.key, c.secret); got != "ok" {
				t.Errorf("Check(%s): got %q, want ok", c.key, got)
			}
		}
		t.Run("Twice", func(t *testing.T) {
			e.wantNothingAppended(t, func() {
				if err := e.svc.EnableUser(testContext(t), ledger.EnableUser{Actor: rootActor, UserID: alice.ID}); err != nil {
					t.Errorf("got %v, want nil", err)
				}
			})
		})
		t.Run("ErrUnknownUser", func(t *testing.T) {
			wantKind(t, e.svc.EnableUser(testContext(t), ledger.EnableUser{Actor: rootActor, UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C"}), domain.NotFound)
		})
	})
}

func TestService_RevokeUserKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")
	k1, s1 := e.createKey(t, alice.ID)
	k2, _ := e.createKey(t, alice.ID)
	k3, s3 := e.createKey(t, alice.ID)
	kb, sb := e.createKey(t, bob.ID)
	if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k2.APIKey}); err != nil {
		t.Fatal(err)
	}
	k2Events := len(e.load(t, domain.CategoryKey, k2.APIKey))

	head := e.head(t)
	revoked, err := e.svc.RevokeUserKeys(testContext(t), ledger.RevokeUserKeys{Actor: rootActor, UserID: alice.ID, Reason: "offboarding"})
	if err != nil {
		t.Fatalf("RevokeUserKeys: %v", err)
	}
	slices.Sort(revoked)
	want := []string{k1.APIKey, k3.APIKey}
	slices.Sort(want)
	if !slices.Equal(revoked, want) {
		t.Fatalf("got %v, want %v (the active keys only)", revoked, want)
	}
	if got := e.head(t); got != head+2 {
		t.Errorf("got head %d, want %d (one event per key)", got, head+2)
	}
	for _, c := range []struct {
		key    string
		secret domain.Secret
	}{{k1.APIKey, s1}, {k3.APIKey, s3}} {
		ev := e.lastEvent(t, domain.CategoryKey, c.key)
		if d, ok := ev.Data.(domain.KeyRevoked); !ok || ev.Actor != rootActor || d.Reason != "offboarding" {
			t.Errorf("%s: got %s by %q with %+v, want key.revoked by %s for offboarding", c.key, ev.Type, ev.Actor, ev.Data, rootActor)
		}
		if got := e.validate(t, c.key, c.secret); got != string(domain.StatusRevoked) {
			t.Errorf("Check(%s): got %q, want revoked", c.key, got)
		}
	}
	if got := len(e.load(t, domain.CategoryKey, k2.APIKey)); got != k2Events {
		t.Errorf("the already revoked key got %d events, want %d", got, k2Events)
	}
	if got := e.validate(t, kb.APIKey, sb); got != "ok" {
		t.Errorf("bob's key: got %q, want ok", got)
	}

	t.Run("Again", func(t *testing.T) {
		e.wantNothingAppended(t, func() {
			revoked, err := e.svc.RevokeUserKeys(testContext(t), ledger.RevokeUserKeys{Actor: rootActor, UserID: alice.ID, Reason: "again"})
			if err != nil || len(revoked) != 0 {
				t.Errorf("got %v, %v, want nothing revoked", revoked, err)
			}
		})
	})

	t.Run("ErrUnknownUser", func(t *testing.T) {
		e.wantNothingAppended(t, func() {
			_, err := e.svc.RevokeUserKeys(testContext(t), ledger.RevokeUserKeys{Actor: rootActor, UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Reason: "r"})
			wantKind(t, err, domain.NotFound)
		})
	})
}

func TestService_CreateUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("Admin", func(t *testing.T) {
		u, err := e.svc.CreateUser(testContext(t), ledger.CreateUser{Actor: rootActor, Email: "Ops@Example.com", Password: password, Role: domain.RoleAdmin})
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if !u.IsAdmin() || u.Role != domain.RoleAdmin || u.Email != "ops@example.com" {
			t.Errorf("got %+v, want an admin ops@example.com", u)
		}
		events := e.load(t, domain.CategoryUser, u.ID)
		if len(events) != 1 || events[0].Type != domain.TypeUserRegistered || events[0].Actor != rootActor {
			t.Errorf("got %v, want one user.registered by %s", events, rootActor)
		}
		if got, err := e.svc.Login(testContext(t), ledger.Login{Email: "ops@example.com", Password: password}); err != nil || !got.IsAdmin() {
			t.Errorf("Login: got %+v, %v, want the admin", got, err)
		}
	})

	t.Run("User", func(t *testing.T) {
		u, err := e.svc.CreateUser(testContext(t), ledger.CreateUser{Actor: rootActor, Email: "dev@example.com", Password: password, Role: domain.RoleUser})
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if u.IsAdmin() || u.Role != domain.RoleUser {
			t.Errorf("got role %q (admin %v), want user", u.Role, u.IsAdmin())
		}
		if ev := e.lastEvent(t, domain.CategoryUser, u.ID); ev.Actor != rootActor {
			t.Errorf("got actor %q, want %s", ev.Actor, rootActor)
		}
	})

	t.Run("SelfRegisteredIsNotAdmin", func(t *testing.T) {
		u := e.register(t, "self@example.com")
		if u.IsAdmin() || u.Role != domain.RoleUser {
			t.Errorf("got role %q (admin %v), want user", u.Role, u.IsAdmin())
		}
		if ev := e.lastEvent(t, domain.CategoryUser, u.ID); ev.Actor != u.ID {
			t.Errorf("got actor %q, want the user %s", ev.Actor, u.ID)
		}
	})

	t.Run("DisabledAdminIsNotAdmin", func(t *testing.T) {
		u, err := e.svc.CreateUser(testContext(t), ledger.CreateUser{Actor: rootActor, Email: "gone@example.com", Password: password, Role: domain.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DisableUser(testContext(t), ledger.DisableUser{Actor: rootActor, UserID: u.ID, Reason: "left"}); err != nil {
			t.Fatal(err)
		}
		got, _, _ := e.users.Get(u.ID)
		if got.IsAdmin() {
			t.Error("got IsAdmin true for a disabled admin, want false")
		}
	})

	t.Run("ErrDuplicate", func(t *testing.T) {
		e.wantNothingAppended(t, func() {
			_, err := e.svc.CreateUser(testContext(t), ledger.CreateUser{Actor: rootActor, Email: "OPS@example.com", Password: password, Role: domain.RoleUser})
			wantKind(t, err, domain.Conflict)
		})
	})

	t.Run("ErrUnknownRole", func(t *testing.T) {
		e.wantNothingAppended(t, func() {
			_, err := e.svc.CreateUser(testContext(t), ledger.CreateUser{Actor: rootActor, Email: "new@example.com", Password: password, Role: domain.Role("superuser")})
			wantKind(t, err, domain.Invalid)
		})
	})
}

func TestService_AdminListKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.register(t, "bob@example.com") // registered first, listed second
	alice := e.register(t, "alice@example.com")
	a1, _ := e.createKey(t, alice.ID)
	a2, _ := e.createKey(t, alice.ID)
	a3, _, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: "short-lived", ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := e.createKey(t, bob.ID)
	if err := e.svc.AdminRevokeKey(testContext(t), ledger.AdminRevokeKey{Actor: rootActor, APIKey: a2.APIKey, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour) // a3 has expired

	cases := []struct {
		name     string
		user     string
		statuses []domain.KeyStatus
		want     []string
	}{
		{"All", "", nil, []string{a3.APIKey, a2.APIKey, a1.APIKey, b1.APIKey}},
		{"Active", "", []domain.KeyStatus{domain.StatusActive}, []string{a1.APIKey, b1.APIKey}},
		{"Revoked", "", []domain.KeyStatus{domain.StatusRevoked}, []string{a2.APIKey}},
		{"Expired", "", []domain.KeyStatus{domain.StatusExpired}, []string{a3.APIKey}},
		{"RevokedOrExpired", "", []domain.KeyStatus{domain.StatusRevoked, domain.StatusExpired}, []string{a3.APIKey, a2.APIKey}},
		{"OneUser", bob.ID, nil, []string{b1.APIKey}},
		{"OneUserActive", alice.ID, []domain.KeyStatus{domain.StatusActive}, []string{a1.APIKey}},
		{"UnknownUser", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", nil, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := e.svc.AdminListKeys(testContext(t), tc.user, tc.statuses)
			if err != nil {
				t.Fatalf("AdminListKeys: %v", err)
			}
			if got := keyIDs(keys); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestService_ListUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, email := range []string{"carol@example.com", "alice@example.com", "bob@example.com"} {
		e.register(t, email)
	}
	if _, err := e.svc.CreateUser(testContext(t), ledger.CreateUser{Actor: rootActor, Email: "aaron@example.com", Password: password, Role: domain.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	users, err := e.svc.ListUsers(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Email)
	}
	want := []string{"aaron@example.com", "alice@example.com", "bob@example.com", "carol@example.com"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if users[0].Role != domain.RoleAdmin || users[1].Role != domain.RoleUser {
		t.Errorf("got roles %q and %q, want admin and user", users[0].Role, users[1].Role)
	}
}
