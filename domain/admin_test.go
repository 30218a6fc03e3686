package domain_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

func adminKey(seed byte) (domain.PublicKey, ed25519.PrivateKey) {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	var pub domain.PublicKey
	copy(pub[:], priv.Public().(ed25519.PublicKey))
	return pub, priv
}

func TestAdmin_EnrollRevoke(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	k1, _ := adminKey(1)
	k2, _ := adminKey(2)
	var a domain.Admin
	if _, err := a.EnrollKey("Bad Name", k1, domain.ActorBootstrap, "", nil, now); domain.KindOf(err) != domain.Invalid {
		t.Errorf("bad name: got %v, want Invalid", err)
	}
	events, err := a.EnrollKey("ops", k1, domain.ActorBootstrap, "first", nil, now)
	if err != nil || len(events) != 1 {
		t.Fatalf("EnrollKey: got %v, %v", events, err)
	}
	apply := func(e domain.Event) {
		t.Helper()
		e.Hash = domain.Hash{0: byte(e.Version)}
		if err := a.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	apply(events[0])
	if _, ok := a.ActiveKey(domain.AdminKeyID(k1)); !ok || a.Name != "ops" {
		t.Fatalf("got %+v, want ops with k1 active", a)
	}
	if _, err := a.EnrollKey("ops", k1, "admin:ops", "", nil, now); domain.KindOf(err) != domain.Conflict {
		t.Errorf("enrol twice: got %v, want Conflict", err)
	}
	events, err = a.EnrollKey("ops", k2, "admin:ops", "", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	apply(events[0])
	events, err = a.RevokeKey(domain.AdminKeyID(k1), "admin:ops", "lost", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	apply(events[0])
	if _, ok := a.ActiveKey(domain.AdminKeyID(k1)); ok {
		t.Errorf("k1 still active after its revocation")
	}
	if _, err := a.RevokeKey(domain.AdminKeyID(k1), "admin:ops", "", nil, now); domain.KindOf(err) != domain.NotFound {
		t.Errorf("revoke twice: got %v, want NotFound", err)
	}
	if _, err := a.EnrollKey("ops", k1, "admin:ops", "", nil, now); domain.KindOf(err) != domain.Conflict {
		t.Errorf("re-enrol a revoked key: got %v, want Conflict", err)
	}
}

func TestSignedRequest_Verify(t *testing.T) {
	pub, priv := adminKey(1)
	other, _ := adminKey(2)
	id := domain.AdminKeyID(pub)
	input := `("@method" "@target-uri");created=1;expires=2;keyid="` + id + `";nonce="0123456789abcdef";alg="ed25519";tag="keyledger-admin-v1"`
	base := `"@method": DELETE` + "\n" + `"@target-uri": http://x/admin/keys/ak_1` + "\n" + `"@signature-params": ` + input
	r := domain.SignedRequest{KeyID: id, Input: input, Base: base, Signature: ed25519.Sign(priv, []byte(base))}
	if err := r.Verify(pub); err != nil {
		t.Fatalf("Verify: got %v, want nil", err)
	}
	if v, ok := r.Component("@target-uri"); !ok || v != "http://x/admin/keys/ak_1" {
		t.Errorf("Component: got %q, %v", v, ok)
	}
	tampered := r
	tampered.Base = `"@method": DELETE` + "\n" + `"@target-uri": http://x/admin/keys/ak_2` + "\n" + `"@signature-params": ` + input
	apiTag := r
	apiTag.Input = `("@method" "@target-uri");keyid="` + id + `";tag="keyledger-v1"`
	for name, c := range map[string]struct {
		r   domain.SignedRequest
		pub domain.PublicKey
	}{"OtherKey": {r, other}, "Tampered": {tampered, pub}, "APITag": {apiTag, pub}} {
		if err := c.r.Verify(c.pub); !errors.Is(err, domain.ErrBadRequestSignature) {
			t.Errorf("%s: got %v, want ErrBadRequestSignature", name, err)
		}
	}
}
