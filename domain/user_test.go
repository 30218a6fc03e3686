package domain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

const passwordHash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"

func TestRegister(t *testing.T) {
	t.Parallel()
	registered := func(email string) []domain.Event {
		return []domain.Event{
			{
				Type: domain.TypeEmailReserved, Schema: domain.CurrentSchema, Aggregate: domain.EmailAggregate(email),
				Version: 1, Time: t0, Actor: alice, Data: domain.EmailReserved{UserID: alice},
			},
			{
				Type: domain.TypeUserRegistered, Schema: domain.CurrentSchema, Aggregate: alice,
				Version: 1, Time: t0, Actor: alice, Data: domain.UserRegistered{Email: email, PasswordHash: passwordHash},
			},
		}
	}
	tests := []struct {
		name     string
		cmd      domain.RegisterUser
		want     []domain.Event
		wantKind domain.Kind
	}{
		{
			name: "OK",
			cmd:  domain.RegisterUser{UserID: alice, Email: "alice@example.com", PasswordHash: passwordHash},
			want: registered("alice@example.com"),
		},
		{
			name: "OKNormalisesEmail",
			cmd:  domain.RegisterUser{UserID: alice, Email: " Alice@Example.COM ", PasswordHash: passwordHash},
			want: registered("alice@example.com"),
		},
		{
			name: "OKPlusAddress",
			cmd:  domain.RegisterUser{UserID: alice, Email: "alice+keys@mail.example.com", PasswordHash: passwordHash},
			want: registered("alice+keys@mail.example.com"),
		},
		{"ErrEmptyEmail", domain.RegisterUser{UserID: alice, Email: "", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrBlankEmail", domain.RegisterUser{UserID: alice, Email: " \t ", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrNoAt", domain.RegisterUser{UserID: alice, Email: "alice.example.com", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrNoLocalPart", domain.RegisterUser{UserID: alice, Email: "@example.com", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrNoDomain", domain.RegisterUser{UserID: alice, Email: "alice@", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrDisplayName", domain.RegisterUser{UserID: alice, Email: "Bob <b@x.io>", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrAngleAddr", domain.RegisterUser{UserID: alice, Email: "<b@x.io>", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrComment", domain.RegisterUser{UserID: alice, Email: "b@x.io (Bob)", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrTwoAddresses", domain.RegisterUser{UserID: alice, Email: "a@x.io, b@x.io", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrTooLong", domain.RegisterUser{UserID: alice, Email: longEmail(domain.MaxEmailLength + 1), PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrSpaceInside", domain.RegisterUser{UserID: alice, Email: "al ice@example.com", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrQuotedSpaceInside", domain.RegisterUser{UserID: alice, Email: `"al ice"@example.com`, PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrTabInside", domain.RegisterUser{UserID: alice, Email: "alice@exa\tmple.com", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrMissingUserID", domain.RegisterUser{Email: "alice@example.com", PasswordHash: passwordHash}, nil, domain.Invalid},
		{"ErrMissingPasswordHash", domain.RegisterUser{UserID: alice, Email: "alice@example.com"}, nil, domain.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.Register(tc.cmd, zoned)
			if tc.wantKind != "" {
				if err == nil {
					t.Fatalf("got events %v and nil error, want kind %v", got, tc.wantKind)
				}
				if kind := domain.KindOf(err); kind != tc.wantKind {
					t.Errorf("kind: got %v, want %v (error %v)", kind, tc.wantKind, err)
				}
				if len(got) != 0 {
					t.Errorf("events: got %v, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			assertEvents(t, got, tc.want)
			var u domain.User
			if err := u.Apply(got[1]); err != nil {
				t.Errorf("Apply(user.registered): got %v, want nil", err)
			}
		})
	}
}

// longEmail returns a syntactically valid address of n bytes.
func longEmail(n int) string {
	const domainPart = "@example.com"
	return strings.Repeat("a", n-len(domainPart)) + domainPart
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"alice@example.com", "alice@example.com"},
		{" Alice@Example.COM ", "alice@example.com"},
		{"\tBOB@X.IO\n", "bob@x.io"},
		{longEmail(domain.MaxEmailLength), longEmail(domain.MaxEmailLength)},
	}
	for _, tc := range tests {
		got, err := domain.NormalizeEmail(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeEmail(%q): got %q, %v, want %q, nil", tc.in, got, err, tc.want)
		}
	}
}

func TestEmailAggregate(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("alice@example.com"))
	if got, want := domain.EmailAggregate("alice@example.com"), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	// The aggregate must not reveal the address.
	if got := domain.EmailAggregate("alice@example.com"); strings.Contains(got, "alice") {
		t.Errorf("got %v, want no address in it", got)
	}
}

func TestUser_Apply(t *testing.T) {
	t.Parallel()
	registered := domain.Event{
		Type: domain.TypeUserRegistered, Schema: 1, Aggregate: alice, Version: 1, Time: t0, Actor: alice,
		Data: domain.UserRegistered{Email: "alice@example.com", PasswordHash: passwordHash},
	}

	t.Run("OK", func(t *testing.T) {
		var u domain.User
		if u.Exists() {
			t.Errorf("zero User Exists: got %v, want %v", true, false)
		}
		if err := u.Apply(registered); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		want := domain.User{ID: alice, Email: "alice@example.com", PasswordHash: passwordHash, Role: domain.RoleUser, CreatedAt: t0, Version: 1}
		if u != want {
			t.Errorf("got %+v, want %+v", u, want)
		}
		if !u.Exists() {
			t.Errorf("Exists: got %v, want %v", false, true)
		}
	})

	reserved := domain.Event{
		Type: domain.TypeEmailReserved, Schema: 1, Aggregate: domain.EmailAggregate("alice@example.com"),
		Version: 1, Time: t0, Actor: alice, Data: domain.EmailReserved{UserID: alice},
	}
	withVersion := func(e domain.Event, v uint64) domain.Event { e.Version = v; return e }
	tests := []struct {
		name  string
		given []domain.Event
		apply domain.Event
	}{
		{"ErrVersionZero", nil, withVersion(registered, 0)},
		{"ErrVersionGap", nil, withVersion(registered, 2)},
		{"ErrRegisterTwice", []domain.Event{registered}, withVersion(registered, 2)},
		{"ErrRegisterTwiceSameVersion", []domain.Event{registered}, registered},
		{"ErrNotAUserEvent", nil, reserved},
		{"ErrKeyEvent", nil, keyCreated(t0, domain.KeyCreated{})},
		{"ErrNilData", nil, func() domain.Event { e := registered; e.Data = nil; return e }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u domain.User
			for _, e := range tc.given {
				if err := u.Apply(e); err != nil {
					t.Fatalf("given: %v", err)
				}
			}
			before := u
			if err := u.Apply(tc.apply); err == nil {
				t.Errorf("got nil error, want one")
			}
			if u != before {
				t.Errorf("failed Apply changed the user: got %+v, want %+v", u, before)
			}
		})
	}
}

func TestUser_DisableEnable(t *testing.T) {
	t.Parallel()
	const alice = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"
	events, err := domain.Register(domain.RegisterUser{UserID: alice, Email: "a@example.com", PasswordHash: "h", Role: domain.RoleAdmin, Actor: "admin:root"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if events[1].Actor != "admin:root" || events[1].Data.(domain.UserRegistered).Role != domain.RoleAdmin {
		t.Fatalf("got %+v, want an admin registered by admin:root", events[1])
	}
	var u domain.User
	if err := u.Apply(events[1]); err != nil {
		t.Fatal(err)
	}
	if !u.IsAdmin() {
		t.Fatal("got not admin, want admin")
	}
	t.Run("OK", func(t *testing.T) {
		off, err := u.Disable("admin:bob", "left the company", t0)
		if err != nil || len(off) != 1 || off[0].Type != domain.TypeUserDisabled || off[0].Version != 2 || off[0].Actor != "admin:bob" {
			t.Fatalf("got %+v, %v, want one user.disabled v2 by admin:bob", off, err)
		}
		d := u
		if err := d.Apply(off[0]); err != nil || !d.Disabled || d.IsAdmin() {
			t.Fatalf("got disabled=%v admin=%v (%v), want a disabled non-admin", d.Disabled, d.IsAdmin(), err)
		}
		again, err := d.Disable("admin:bob", "", t0)
		if err != nil || len(again) != 0 {
			t.Fatalf("disabling twice: got %v, %v, want nothing", again, err)
		}
		on, err := d.Enable("admin:bob", "back", t0)
		if err != nil || len(on) != 1 || on[0].Type != domain.TypeUserEnabled {
			t.Fatalf("got %+v, %v, want one user.enabled", on, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		var nobody domain.User
		if _, err := nobody.Disable("admin:bob", "", t0); domain.KindOf(err) != domain.NotFound {
			t.Fatalf("got %v, want not found", err)
		}
	})
	t.Run("ErrUnknownRole", func(t *testing.T) {
		_, err := domain.Register(domain.RegisterUser{UserID: alice, Email: "a@example.com", PasswordHash: "h", Role: "root"}, t0)
		if domain.KindOf(err) != domain.Invalid {
			t.Fatalf("got %v, want invalid", err)
		}
	})
	t.Run("ErrLongReason", func(t *testing.T) {
		if _, err := u.Disable("admin:bob", strings.Repeat("r", domain.MaxReasonLength+1), t0); domain.KindOf(err) != domain.Invalid {
			t.Fatalf("got %v, want invalid", err)
		}
	})
}

func TestKey_RevokeAsAdmin(t *testing.T) {
	t.Parallel()
	var k domain.Key
	const owner = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"
	created, err := k.Create(domain.CreateKey{APIKey: "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", UserID: owner, SecretHash: domain.Hash{1}, PublicKey: domain.PublicKey{1}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(created[0]); err != nil {
		t.Fatal(err)
	}
	events, err := k.RevokeAsAdmin("admin:bob", "leaked in a paste", t0)
	if err != nil || len(events) != 1 || events[0].Actor != "admin:bob" || events[0].Data.(domain.KeyRevoked).Reason != "leaked in a paste" {
		t.Fatalf("got %+v, %v, want a revocation by admin:bob with the reason", events, err)
	}
	var missing domain.Key
	if _, err := missing.RevokeAsAdmin("admin:bob", "", t0); domain.KindOf(err) != domain.NotFound {
		t.Fatalf("got %v, want not found", err)
	}
}
