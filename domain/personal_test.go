package domain_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

func TestSealPersonal(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, domain.DataKeySize)
	p := domain.Personal{Email: "alice@example.com", PasswordHash: passwordHash}
	sealed, err := domain.SealPersonal(key, alice, domain.TypeUserRegistered, 2, p, rand.Reader)
	if err != nil {
		t.Fatalf("SealPersonal: got %v, want nil", err)
	}
	t.Run("OK", func(t *testing.T) {
		got, err := domain.OpenPersonal(key, alice, domain.TypeUserRegistered, 2, sealed)
		if err != nil || got != p {
			t.Fatalf("got %+v, %v, want %+v, nil", got, err, p)
		}
	})
	t.Run("NoClearValue", func(t *testing.T) {
		b, err := json.Marshal(domain.UserRegistered{Personal: sealed})
		if err != nil {
			t.Fatal(err)
		}
		for _, clear := range []string{"alice", "example.com", "argon2id", "c2FsdHNhbHRzYWx0"} {
			if bytes.Contains(b, []byte(clear)) || strings.Contains(string(sealed), clear) {
				t.Errorf("got %s, want no %q in it", b, clear)
			}
		}
	})
	t.Run("FreshNonce", func(t *testing.T) {
		again, err := domain.SealPersonal(key, alice, domain.TypeUserRegistered, 2, p, rand.Reader)
		if err != nil || again == sealed {
			t.Fatalf("sealing twice: got the same bytes (%v), want a fresh nonce each time", err)
		}
	})
	t.Run("PaddedLength", func(t *testing.T) {
		short, _ := domain.SealPersonal(key, alice, domain.TypeUserRegistered, 2, domain.Personal{Email: "a@b.io", PasswordHash: passwordHash}, rand.Reader)
		if len(short) != len(sealed) {
			t.Errorf("lengths for two emails: got %d and %d, want the same padded length", len(short), len(sealed))
		}
	})
	// An attacker who can write to the log copies alice's sealed value
	// into an event of bob's (or of another type or schema): it must not
	// open there, even under the same key.
	tests := []struct {
		name      string
		key       []byte
		user, typ string
		schema    int
		sealed    domain.Sealed
	}{
		{"ErrOtherUser", key, bob, domain.TypeUserRegistered, 2, sealed},
		{"ErrOtherType", key, alice, domain.TypeUserErased, 2, sealed},
		{"ErrOtherSchema", key, alice, domain.TypeUserRegistered, 3, sealed},
		{"ErrOtherKey", bytes.Repeat([]byte{8}, domain.DataKeySize), alice, domain.TypeUserRegistered, 2, sealed},
		{"ErrFlippedBit", key, alice, domain.TypeUserRegistered, 2, flip(sealed, 20)},
		{"ErrTruncated", key, alice, domain.TypeUserRegistered, 2, sealed[:len(sealed)-1]},
		{"ErrShort", key, alice, domain.TypeUserRegistered, 2, sealed[:11]},
		{"ErrEmpty", key, alice, domain.TypeUserRegistered, 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.OpenPersonal(tc.key, tc.user, tc.typ, tc.schema, tc.sealed)
			if !errors.Is(err, domain.ErrSealBroken) {
				t.Fatalf("got %+v, %v, want %v", got, err, domain.ErrSealBroken)
			}
			if got != (domain.Personal{}) {
				t.Errorf("got %+v, want nothing", got)
			}
		})
	}
	t.Run("ErrKeySize", func(t *testing.T) {
		if _, err := domain.SealPersonal(key[:16], alice, domain.TypeUserRegistered, 2, p, rand.Reader); err == nil {
			t.Error("SealPersonal with a 16-byte key: got nil, want an error")
		}
		if _, err := domain.OpenPersonal(nil, alice, domain.TypeUserRegistered, 2, sealed); err == nil {
			t.Error("OpenPersonal with no key: got nil, want an error")
		}
	})
}

func flip(s domain.Sealed, i int) domain.Sealed {
	b := []byte(s)
	b[i] ^= 1
	return domain.Sealed(b)
}

// TestUserRegistered_NoClearValues: the writer refuses a schema 2
// user.registered that would carry clear values or nothing sealed, and the
// reader refuses one without sealed data.
func TestUserRegistered_NoClearValues(t *testing.T) {
	t.Parallel()
	base := sampleEvents()[0]
	for name, d := range map[string]domain.UserRegistered{
		"ClearEmail":  {Personal: sampleSealed(), Email: "alice@example.com"},
		"ClearHash":   {Personal: sampleSealed(), PasswordHash: passwordHash},
		"NothingSeal": {},
	} {
		t.Run(name, func(t *testing.T) {
			e := base
			e.Data = d
			if b, err := domain.EncodeEvent(e); err == nil {
				t.Errorf("got %s, want an error", b)
			}
		})
	}
	for _, data := range []string{`{}`, `{"personal":""}`, `{"personal":"!!"}`, `{"email":"a@b.io","password_hash":"h"}`} {
		in := fmt.Sprintf(`{"id":"x","type":"user.registered","schema":2,"aggregate":%q,"version":1,"time":"2026-11-01T00:00:00Z","actor":"u","data":%s}`, alice, data)
		if e, err := domain.DecodeEvent([]byte(in)); err == nil {
			t.Errorf("DecodeEvent(%s): got %+v, want an error", in, e)
		}
	}
}

func TestUser_Erase(t *testing.T) {
	t.Parallel()
	reg := domain.Event{Type: domain.TypeUserRegistered, Schema: 2, Aggregate: alice, Version: 1, Time: t0, Actor: alice,
		Data: domain.UserRegistered{Personal: sealedAlice}}
	legacy := domain.Event{Type: domain.TypeUserRegistered, Schema: 1, Aggregate: alice, Version: 1, Time: t0, Actor: alice,
		Data: domain.UserRegistered{Email: "alice@example.com", PasswordHash: passwordHash}}
	for name, first := range map[string]domain.Event{"Sealed": reg, "Legacy": legacy} {
		t.Run(name, func(t *testing.T) {
			var u domain.User
			if err := u.Apply(first); err != nil {
				t.Fatal(err)
			}
			events, err := u.Erase(alice, "asked to be forgotten", t1)
			if err != nil || len(events) != 1 || events[0].Type != domain.TypeUserErased || events[0].Version != 2 ||
				events[0].Schema != 1 {
				t.Fatalf("got %+v, %v, want one user.erased v2", events, err)
			}
			if err := u.Apply(events[0]); err != nil {
				t.Fatal(err)
			}
			if !u.Erased || !u.Disabled || u.Email != "" || u.PasswordHash != "" || u.Personal != "" || u.IsAdmin() {
				t.Errorf("got %+v, want an erased, disabled user with no personal data", u)
			}
			if again, err := u.Erase(alice, "", t2); err != nil || len(again) != 0 {
				t.Errorf("erasing twice: got %v, %v, want nothing", again, err)
			}
			if _, err := u.Enable("admin:bob", "", t2); domain.KindOf(err) != domain.NotFound {
				t.Errorf("Enable after erase: got %v, want not found", err)
			}
			if _, err := u.Disable("admin:bob", "", t2); domain.KindOf(err) != domain.NotFound {
				t.Errorf("Disable after erase: got %v, want not found", err)
			}
			enabled := domain.Event{Type: domain.TypeUserEnabled, Schema: 1, Aggregate: alice, Version: 3, Time: t2,
				Actor: "admin:bob", Data: domain.UserEnabled{}}
			if err := u.Apply(enabled); err == nil {
				t.Error("Apply(user.enabled) after erase: got nil, want an error")
			}
		})
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		var nobody domain.User
		if _, err := nobody.Erase("admin:bob", "", t0); domain.KindOf(err) != domain.NotFound {
			t.Fatalf("got %v, want not found", err)
		}
	})
}

func FuzzOpenPersonal(f *testing.F) {
	key := bytes.Repeat([]byte{7}, domain.DataKeySize)
	// A fixed nonce: every fuzzing worker must seal the same bytes.
	sealed, err := domain.SealPersonal(key, alice, domain.TypeUserRegistered, 2,
		domain.Personal{Email: "alice@example.com", PasswordHash: passwordHash}, strings.NewReader("fixed nonce!"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(sealed))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 28))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := domain.OpenPersonal(key, alice, domain.TypeUserRegistered, 2, domain.Sealed(in))
		if err != nil && p != (domain.Personal{}) {
			t.Fatalf("got %+v with error %v, want nothing", p, err)
		}
		if err == nil && string(in) != string(sealed) {
			t.Fatalf("opened %x, which was never sealed", in)
		}
	})
}
