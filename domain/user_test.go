package domain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// emailHashKey is a fixed key for email reservations.
var emailHashKey = []byte("0123456789abcdef0123456789abcdef")

const passwordHash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"

// sealedAlice stands for alice's sealed personal data (Register does not
// open it).
const sealedAlice = domain.Sealed("\x01nonce-and-ciphertext")

func TestRegister(t *testing.T) {
	t.Parallel()
	emailKey := domain.EmailAggregate(emailHashKey, "alice@example.com")
	registered := func(res domain.Reservation, role domain.Role, actor string) []domain.Event {
		return []domain.Event{
			{
				Type: domain.TypeEmailReserved, Schema: 1, Aggregate: emailKey,
				Version: res.Version + 1, Prev: res.LastHash, Time: t0, Actor: actor, Data: domain.EmailReserved{UserID: alice},
			},
			{
				Type: domain.TypeUserRegistered, Schema: 2, Aggregate: alice,
				Version: 1, Time: t0, Actor: actor, Data: domain.UserRegistered{Personal: sealedAlice, Role: role},
			},
		}
	}
	ok := domain.RegisterUser{UserID: alice, EmailKey: emailKey, Personal: sealedAlice}
	with := func(edit func(*domain.RegisterUser)) domain.RegisterUser { c := ok; edit(&c); return c }
	after := domain.Reservation{Version: 3, LastHash: domain.Hash{0: 9}}
	tests := []struct {
		name     string
		cmd      domain.RegisterUser
		want     []domain.Event
		wantKind domain.Kind
	}{
		{"OK", ok, registered(domain.Reservation{}, "", alice), ""},
		{"OKAfterErasedHolder", with(func(c *domain.RegisterUser) { c.Reservation = after }), registered(after, "", alice), ""},
		{"OKAdminByAdmin", with(func(c *domain.RegisterUser) { c.Role, c.Actor = domain.RoleAdmin, "admin:root" }),
			registered(domain.Reservation{}, domain.RoleAdmin, "admin:root"), ""},
		{"ErrMissingUserID", with(func(c *domain.RegisterUser) { c.UserID = "" }), nil, domain.Invalid},
		{"ErrMissingPersonal", with(func(c *domain.RegisterUser) { c.Personal = "" }), nil, domain.Invalid},
		{"ErrClearEmailAsKey", with(func(c *domain.RegisterUser) { c.EmailKey = "alice@example.com" }), nil, domain.Invalid},
		{"ErrUpperHexKey", with(func(c *domain.RegisterUser) { c.EmailKey = strings.ToUpper(emailKey) }), nil, domain.Invalid},
		{"ErrUnknownRole", with(func(c *domain.RegisterUser) { c.Role = "root" }), nil, domain.Invalid},
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
			if u.Email != "" || u.PasswordHash != "" || u.Personal != sealedAlice {
				t.Errorf("got email %q hash %q personal %q, want only the sealed value", u.Email, u.PasswordHash, u.Personal)
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
	for _, bad := range []string{"", " \t ", "alice.example.com", "@example.com", "alice@", "Bob <b@x.io>", "<b@x.io>",
		"b@x.io (Bob)", "a@x.io, b@x.io", longEmail(domain.MaxEmailLength + 1), "al ice@example.com",
		`"al ice"@example.com`, "alice@exa\tmple.com"} {
		if got, err := domain.NormalizeEmail(bad); domain.KindOf(err) != domain.Invalid {
			t.Errorf("NormalizeEmail(%q): got %q, %v, want an Invalid error", bad, got, err)
		}
	}
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

// TestEmailAggregate: a reservation's aggregate is keyed. A bare SHA-256
// of the address (what logs used before) can be recomputed by anyone with a
// list of addresses, so it must not be what Register writes.
func TestEmailAggregate(t *testing.T) {
	t.Parallel()
	const email = "alice@example.com"
	sum := sha256.Sum256([]byte(email))
	bare := hex.EncodeToString(sum[:])
	if got := domain.LegacyEmailAggregate(email); got != bare {
		t.Errorf("LegacyEmailAggregate: got %v, want %v", got, bare)
	}
	got := domain.EmailAggregate(emailHashKey, email)
	if got == bare || strings.Contains(got, "alice") {
		t.Errorf("EmailAggregate: got %v, want neither the bare SHA-256 %v nor the address", got, bare)
	}
	if other := domain.EmailAggregate([]byte("another key of thirty-two bytes!"), email); other == got {
		t.Errorf("EmailAggregate under two keys: got %v twice, want the key to matter", got)
	}
	if len(got) != 64 {
		t.Errorf("len: got %d, want 64 hex digits", len(got))
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
		if !reflect.DeepEqual(u, want) {
			t.Errorf("got %+v, want %+v", u, want)
		}
		if !u.Exists() {
			t.Errorf("Exists: got %v, want %v", false, true)
		}
	})

	reserved := domain.Event{
		Type: domain.TypeEmailReserved, Schema: 1, Aggregate: domain.EmailAggregate(emailHashKey, "alice@example.com"),
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
			if !reflect.DeepEqual(u, before) {
				t.Errorf("failed Apply changed the user: got %+v, want %+v", u, before)
			}
		})
	}
}

func TestUser_DisableEnable(t *testing.T) {
	t.Parallel()
	const alice = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"
	emailKey := domain.EmailAggregate(emailHashKey, "a@example.com")
	events, err := domain.Register(domain.RegisterUser{UserID: alice, EmailKey: emailKey, Personal: sealedAlice, Role: domain.RoleAdmin, Actor: "admin:root"}, t0)
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
		_, err := domain.Register(domain.RegisterUser{UserID: alice, EmailKey: emailKey, Personal: sealedAlice, Role: "root"}, t0)
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
