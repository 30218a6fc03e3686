package ledger_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledger"
)

// observation is one call of Config.Observe.
type observation struct {
	command string
	kind    domain.Kind
	took    time.Duration
}

// observer records what Config.Observe reports; safe for concurrent use.
type observer struct {
	mu   sync.Mutex
	seen []observation
}

func (o *observer) observe(command string, kind domain.Kind, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, observation{command, kind, took})
}

// take returns what was observed since the last take.
func (o *observer) take() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := o.seen
	o.seen = nil
	return seen
}

// wantObserved checks that exactly one command ran, named command, with
// outcome kind ("" for success).
func (o *observer) wantObserved(t *testing.T, command string, kind domain.Kind) {
	t.Helper()
	seen := o.take()
	if len(seen) != 1 {
		t.Fatalf("got %d observations %+v, want one of %s", len(seen), seen, command)
	}
	if got := seen[0]; got.command != command || got.kind != kind || got.took < 0 {
		t.Fatalf("got %+v, want command %q, kind %q and a duration", got, command, kind)
	}
}

// observedService returns a Service over e's store and read models that
// reports its commands to o.
func (e *env) observedService(t *testing.T, o *observer) *ledger.Service {
	t.Helper()
	passwords, err := auth.NewPasswords(auth.Argon2Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatalf("NewPasswords: %v", err)
	}
	svc, err := ledger.New(ledger.Config{Log: e.store, Progress: e.projector, Keys: e.keys, Users: e.users, DataKeys: e.dataKeys,
		Passwords: passwords, Throttle: auth.NewThrottle(), Now: e.clock.Now, Observe: o.observe})
	if err != nil {
		t.Fatalf("ledger.New: %v", err)
	}
	return svc
}

func TestService_Observe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := &observer{}
	svc := e.observedService(t, o)
	ctx := testContext(t)

	alice, err := svc.RegisterUser(ctx, ledger.RegisterUser{Email: "alice@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	o.wantObserved(t, "register_user", "")

	t.Run("OK", func(t *testing.T) {
		k, _, err := svc.CreateKey(ctx, ledger.CreateKey{UserID: alice.ID, Name: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		o.wantObserved(t, "create_key", "")
		if _, err := svc.RegenerateSecret(ctx, ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
			t.Fatal(err)
		}
		o.wantObserved(t, "regenerate_secret", "")
		if err := svc.RevokeKey(ctx, ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
			t.Fatal(err)
		}
		o.wantObserved(t, "revoke_key", "")
		if _, err := svc.Login(ctx, ledger.Login{Email: "alice@example.com", Password: password}); err != nil {
			t.Fatal(err)
		}
		o.wantObserved(t, "login", "")
	})

	t.Run("Errors", func(t *testing.T) {
		_, err := svc.RegisterUser(ctx, ledger.RegisterUser{Email: "alice@example.com", Password: password})
		wantKind(t, err, domain.Conflict)
		o.wantObserved(t, "register_user", domain.Conflict)

		wantKind(t, svc.RevokeKey(ctx, ledger.RevokeKey{UserID: alice.ID, APIKey: newAPIKey()}), domain.NotFound)
		o.wantObserved(t, "revoke_key", domain.NotFound)

		_, _, err = svc.CreateKey(ctx, ledger.CreateKey{UserID: alice.ID, Name: "bad\x00name"})
		wantKind(t, err, domain.Invalid)
		o.wantObserved(t, "create_key", domain.Invalid)

		_, err = svc.Login(ctx, ledger.Login{Email: "alice@example.com", Password: password + "!"})
		wantKind(t, err, domain.Unauthorized)
		o.wantObserved(t, "login", domain.Unauthorized)
	})

	t.Run("Admin", func(t *testing.T) {
		const actor = "admin:root"
		k1, _ := e.createKey(t, alice.ID)
		e.createKey(t, alice.ID) // by e.svc: not observed
		if err := svc.AdminRevokeKey(ctx, ledger.AdminRevokeKey{Actor: actor, APIKey: k1.APIKey}); err != nil {
			t.Fatal(err)
		}
		o.wantObserved(t, "admin_revoke_key", "")
		// The keys it revokes are part of it: one observation, not one per key.
		revoked, err := svc.RevokeUserKeys(ctx, ledger.RevokeUserKeys{Actor: actor, UserID: alice.ID})
		if err != nil || len(revoked) != 1 {
			t.Fatalf("RevokeUserKeys: got %v, %v, want one key revoked", revoked, err)
		}
		o.wantObserved(t, "revoke_user_keys", "")
		if err := svc.DisableUser(ctx, ledger.DisableUser{Actor: actor, UserID: alice.ID}); err != nil {
			t.Fatal(err)
		}
		o.wantObserved(t, "disable_user", "")
		if err := svc.EnableUser(ctx, ledger.EnableUser{Actor: actor, UserID: alice.ID}); err != nil {
			t.Fatal(err)
		}
		o.wantObserved(t, "enable_user", "")
		if _, err := svc.CreateUser(ctx, ledger.CreateUser{Actor: actor, Email: "ops@example.com", Password: password,
			Role: domain.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		o.wantObserved(t, "create_user", "")
		wantKind(t, svc.DisableUser(ctx, ledger.DisableUser{Actor: actor, UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C"}),
			domain.NotFound)
		o.wantObserved(t, "disable_user", domain.NotFound)
	})

	t.Run("Queries", func(t *testing.T) {
		if _, err := svc.ListUsers(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.ListKeys(alice.ID, 0, ""); err != nil {
			t.Fatal(err)
		}
		if seen := o.take(); len(seen) != 0 {
			t.Errorf("got %+v, want queries unobserved", seen)
		}
	})
}

// TestCommandNames: every command's name is listed, once, and the names
// are today's metric label values.
func TestCommandNames(t *testing.T) {
	t.Parallel()
	commands := []ledger.Command{ledger.RegisterUser{}, ledger.Login{}, ledger.CreateKey{}, ledger.RevokeKey{},
		ledger.RegenerateSecret{}, ledger.AdminRevokeKey{}, ledger.DisableUser{}, ledger.EnableUser{},
		ledger.RevokeUserKeys{}, ledger.CreateUser{}, ledger.EnrollAdminKey{}, ledger.RevokeAdminKey{}, ledger.BootstrapAdmin{},
		ledger.EraseUser{}, ledger.EraseMe{}}
	commands = append(commands, ledger.VerifyEmail{}, ledger.ResendVerification{}, ledger.CreateInvitation{})
	commands = append(commands, ledger.EditKey{}, ledger.DisableKey{}, ledger.EnableKey{}, ledger.AdminEditKey{}, ledger.AdminDisableKey{}, ledger.AdminEnableKey{})
	commands = append(commands, ledger.ChangePassword{}, ledger.RevokeSessions{}, ledger.EndSession{})
	commands = append(commands, ledger.AddCredits{}, ledger.AdminAddCredits{})
	commands = append(commands, ledger.OIDCLogin{}, ledger.LinkIdentity{})
	commands = append(commands, ledger.CreateTeam{}, ledger.InviteMember{}, ledger.JoinTeam{}, ledger.ChangeMemberRole{},
		ledger.RemoveMember{}, ledger.CreateServiceAccount{}, ledger.ChangeServiceAccount{}, ledger.AdminTransferTeam{},
		ledger.AdminSetTeamDisabled{})
	var got []string
	for _, c := range commands {
		got = append(got, c.CommandName())
	}
	want := []string{"register_user", "login", "create_key", "revoke_key", "regenerate_secret", "admin_revoke_key",
		"disable_user", "enable_user", "revoke_user_keys", "create_user", "enroll_admin_key", "revoke_admin_key", "bootstrap_admin",
		"erase_user", "erase_me"}
	want = append(want, "verify_email", "resend_verification", "create_invitation")
	want = append(want, "edit_key", "disable_key", "enable_key", "admin_edit_key", "admin_disable_key", "admin_enable_key")
	want = append(want, "change_password", "revoke_sessions", "end_session")
	want = append(want, "add_credits", "admin_add_credits")
	want = append(want, "oidc_login", "link_identity")
	want = append(want, "create_team", "invite_member", "join_team", "change_member_role", "remove_member",
		"create_service_account", "change_service_account", "admin_transfer_team", "admin_set_team_disabled")
	if !slices.Equal(got, want) {
		t.Errorf("CommandName: got %v, want %v", got, want)
	}
	names := ledger.CommandNames()
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("CommandNames: got %v, want %v", names, want)
	}
}

// TestCommand_LogValue: commands that carry a password log without it.
func TestCommand_LogValue(t *testing.T) {
	t.Parallel()
	const secret = "a password nobody may log"
	for _, c := range []ledger.Command{
		ledger.RegisterUser{Email: "a@example.com", Password: secret},
		ledger.Login{Email: "a@example.com", Password: secret},
		ledger.CreateUser{Actor: "admin:root", Email: "a@example.com", Password: secret, Role: domain.RoleAdmin},
		ledger.EraseMe{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Password: secret},
		ledger.ChangePassword{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", CurrentPassword: secret, NewPassword: secret},
		ledger.JoinTeam{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Token: secret},
		ledger.InviteMember{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Email: secret},
	} {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("run", "cmd", c)
		if strings.Contains(buf.String(), secret) || !strings.Contains(buf.String(), c.CommandName()) {
			t.Errorf("%s: got log %q, want its name and no password", c.CommandName(), buf.String())
		}
	}
}
