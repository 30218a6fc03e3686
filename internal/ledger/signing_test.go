package ledger_test

import (
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// TestService_KeysCarryPublicKeys: a created or regenerated key's events
// carry the public key of its secret (and never the secret), and a
// signed-only key refuses its secret in validation.
func TestService_KeysCarryPublicKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	publicOf := func(s domain.Secret, apiKey string) domain.PublicKey {
		p, err := s.PublicKey(apiKey)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	k, secret, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: "signer", SignedOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !k.SignedOnly || k.PublicKey != publicOf(secret, k.APIKey) {
		t.Errorf("created: got SignedOnly %v, PublicKey %x, want true and the secret's public key", k.SignedOnly, k.PublicKey)
	}
	events := e.load(t, domain.CategoryKey, k.APIKey)
	if len(events) != 1 || events[0].Schema != domain.KeyPolicySchema {
		t.Fatalf("got %d events (schema %d), want one key.created of schema %d", len(events), events[0].Schema, domain.KeyPolicySchema)
	}
	if d := events[0].Data.(domain.KeyCreated); d.PublicKey != k.PublicKey || !d.SignedOnly {
		t.Errorf("key.created: got %+v, want the public key and signed_only", d)
	}
	if got := e.validate(t, k.APIKey, secret); got != "signed_only" {
		t.Errorf("Validate with the secret of a signed-only key: got %q, want signed_only", got)
	}

	newSecret, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.GetKey(alice.ID, k.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.PublicKey != publicOf(newSecret, k.APIKey) || got.PublicKey == k.PublicKey || !got.SignedOnly {
		t.Errorf("regenerated: got PublicKey %x (old %x), SignedOnly %v, want the new secret's and still signed-only",
			got.PublicKey, k.PublicKey, got.SignedOnly)
	}
	events = e.load(t, domain.CategoryKey, k.APIKey)
	if d, ok := events[len(events)-1].Data.(domain.KeySecretRegenerated); !ok || d.PublicKey != got.PublicKey {
		t.Errorf("key.secret_regenerated: got %+v, want the new public key", events[len(events)-1].Data)
	}

	plain, plainSecret, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: "plain", ExpiresAt: t0.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if plain.SignedOnly || plain.PublicKey != publicOf(plainSecret, plain.APIKey) {
		t.Errorf("plain key: got SignedOnly %v, PublicKey %x, want false and the secret's public key", plain.SignedOnly, plain.PublicKey)
	}
	if got := e.validate(t, plain.APIKey, plainSecret); got != "ok" {
		t.Errorf("Validate plain key: got %q, want ok", got)
	}
}
