package projections_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

func lookupSecret(t *testing.T, b byte) domain.Secret {
	t.Helper()
	s, err := domain.NewSecret(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLookup_CheckAndSigner(t *testing.T) {
	t.Parallel()
	user := newUserID()
	secret, other := lookupSecret(t, 1), lookupSecret(t, 2)
	pub := domain.PublicKey{0x0a, 31: 0x0b}
	created := func(apiKey string, signedOnly bool) domain.Event {
		e := keyCreated(apiKey, user, 1)
		d := e.Data.(domain.KeyCreated)
		d.SecretHash, d.PublicKey, d.SignedOnly = secret.Hash(), pub, signedOnly
		e.Data = d
		return e
	}
	plain, signedOnly, revoked, legacy := newAPIKey(), newAPIKey(), newAPIKey(), newAPIKey()
	l := projections.NewLookup(0)
	legacyEvent := created(legacy, false)
	d := legacyEvent.Data.(domain.KeyCreated)
	d.PublicKey = domain.PublicKey{} // as decoded from a schema 1 event
	legacyEvent.Data = d
	for _, e := range []domain.Event{created(plain, false), created(signedOnly, true), created(revoked, false),
		keyRevoked(revoked, user, 2, 4), legacyEvent} {
		if err := l.Apply(e); err != nil {
			t.Fatalf("Apply %s: %v", e.Type, err)
		}
	}
	now := t0.Add(time.Hour)
	checks := []struct {
		name, apiKey string
		secret       domain.Secret
		want         domain.Reason
	}{
		{"Plain", plain, secret, domain.ReasonOK},
		{"WrongSecret", plain, other, domain.ReasonWrongSecret},
		{"ZeroSecret", plain, domain.Secret{}, domain.ReasonWrongSecret},
		{"SignedOnly", signedOnly, secret, domain.ReasonSignedOnly},
		{"SignedOnlyWrongSecret", signedOnly, other, domain.ReasonWrongSecret},
		{"Revoked", revoked, secret, domain.ReasonRevoked},
		{"Unknown", newAPIKey(), secret, domain.ReasonUnknownKey},
		{"LegacyKey", legacy, secret, domain.ReasonOK},
	}
	for _, tc := range checks {
		t.Run("Check/"+tc.name, func(t *testing.T) {
			res := l.Check(tc.apiKey, tc.secret, now)
			if res.Reason != tc.want || res.OK != (tc.want == domain.ReasonOK) {
				t.Errorf("got %+v, want reason %s", res, tc.want)
			}
			if res.OK && res.UserID != user {
				t.Errorf("UserID: got %v, want %v", res.UserID, user)
			}
		})
	}
	signers := []struct {
		name, apiKey string
		want         domain.Reason
	}{
		{"Plain", plain, domain.ReasonOK},
		{"SignedOnly", signedOnly, domain.ReasonOK},
		{"Revoked", revoked, domain.ReasonRevoked},
		{"Unknown", newAPIKey(), domain.ReasonUnknownKey},
		{"LegacyKey", legacy, domain.ReasonNoPublicKey},
	}
	for _, tc := range signers {
		t.Run("Signer/"+tc.name, func(t *testing.T) {
			got, res := l.Signer(tc.apiKey, now)
			if res.Reason != tc.want || res.OK != (tc.want == domain.ReasonOK) {
				t.Errorf("got %+v, want reason %s", res, tc.want)
			}
			if res.OK && got != pub {
				t.Errorf("public key: got %x, want %x", got, pub)
			}
			if !res.OK && !got.IsZero() {
				t.Errorf("public key of a refused key: got %x, want none", got)
			}
		})
	}
	t.Run("RegenerateReplacesPublicKey", func(t *testing.T) {
		if err := l.Apply(keyRegenerated(plain, user, 2, 9, other.Hash())); err != nil {
			t.Fatal(err)
		}
		got, res := l.Signer(plain, now)
		if !res.OK || got != (domain.PublicKey{0x02}) {
			t.Errorf("got %x, %+v, want the regenerated public key", got, res)
		}
		if res := l.Check(plain, secret, now); res.OK {
			t.Errorf("old secret after regenerate: got %+v, want refused", res)
		}
		if res := l.Check(plain, other, now); !res.OK {
			t.Errorf("new secret: got %+v, want ok", res)
		}
	})
}

// TestNewLookup_SizeHint: any size hint gives a working, empty lookup; a
// negative one is no hint rather than a panic.
func TestNewLookup_SizeHint(t *testing.T) {
	t.Parallel()
	for _, hint := range []int{-1, 0, 1000} {
		l := projections.NewLookup(hint)
		if got := l.Len(); got != 0 {
			t.Fatalf("NewLookup(%d): got %d keys, want 0", hint, got)
		}
		apiKey := newAPIKey()
		if err := l.Apply(keyCreated(apiKey, newUserID(), 1)); err != nil {
			t.Fatalf("NewLookup(%d): Apply: %v", hint, err)
		}
		if got := l.Len(); got != 1 {
			t.Fatalf("NewLookup(%d): got %d keys after one created, want 1", hint, got)
		}
	}
}

// TestLookup_CheckParsed: CheckParsed decides as Check does on the same
// credentials, and a zero hash (no secret) matches no key, not even one
// whose entry holds no secret.
func TestLookup_CheckParsed(t *testing.T) {
	t.Parallel()
	user := newUserID()
	secret, other := lookupSecret(t, 1), lookupSecret(t, 2)
	withSecret, noSecret := newAPIKey(), newAPIKey()
	l := projections.NewLookup(0)
	for i, k := range []string{withSecret, noSecret} {
		e := keyCreated(k, user, uint64(i+1))
		d := e.Data.(domain.KeyCreated)
		d.SecretHash = secret.Hash()
		if k == noSecret {
			d.SecretHash = domain.Hash{}
		}
		e.Data = d
		if err := l.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name, apiKey string
		secret       domain.Secret
		want         domain.Reason
	}{
		{"OK", withSecret, secret, domain.ReasonOK},
		{"WrongSecret", withSecret, other, domain.ReasonWrongSecret},
		{"NoSecretKey", noSecret, other, domain.ReasonWrongSecret},
		{"Unknown", newAPIKey(), secret, domain.ReasonUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := domain.ParseAPIKeyID(tc.apiKey)
			if !ok {
				t.Fatal("malformed key")
			}
			got, want := l.CheckParsed(id, tc.secret.Hash(), now), l.Check(tc.apiKey, tc.secret, now)
			if got.Reason != tc.want || want.Reason != tc.want || got.OK != want.OK || got.UserID != want.UserID ||
				got.Name != want.Name {
				t.Fatalf("CheckParsed: %+v, Check: %+v, want reason %s", got, want, tc.want)
			}
		})
	}
	t.Run("ZeroHash", func(t *testing.T) {
		for _, k := range []string{withSecret, noSecret} {
			id, _ := domain.ParseAPIKeyID(k)
			if res := l.CheckParsed(id, domain.Hash{}, now); res.OK || res.Reason != domain.ReasonWrongSecret {
				t.Errorf("%s with a zero hash: got %+v, want refused", k, res)
			}
			if res := l.Check(k, domain.Secret{}, now); res.OK {
				t.Errorf("%s with a zero secret: got %+v, want refused", k, res)
			}
		}
	})
}
