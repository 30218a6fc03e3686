package projections_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

func testAdminKey(seed byte) (domain.PublicKey, ed25519.PrivateKey) {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	var pub domain.PublicKey
	copy(pub[:], priv.Public().(ed25519.PublicKey))
	return pub, priv
}

// signedBy returns a kept admin request signed by priv.
func signedBy(pub domain.PublicKey, priv ed25519.PrivateKey) *domain.SignedRequest {
	id := domain.AdminKeyID(pub)
	input := `("@method" "@target-uri");created=1;expires=2;keyid="` + id + `";nonce="0123456789abcdef";alg="ed25519";tag="keyledger-admin-v1"`
	base := `"@method": POST` + "\n" + `"@target-uri": http://x/admin/admin-keys` + "\n" + `"@signature-params": ` + input
	return &domain.SignedRequest{KeyID: id, Input: input, Base: base, Signature: ed25519.Sign(priv, []byte(base))}
}

// TestAdmins_Authority: a writer holding the ledger's key but no admin's
// cannot make an admin: every reader refuses admin events whose kept
// request is not signed by an admin key active at their position.
func TestAdmins_Authority(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	rootPub, rootPriv := testAdminKey(1)
	evePub, evePriv := testAdminKey(2)
	m := projections.NewAdmins()
	seq := uint64(0)
	enrol := func(name, actor string, key domain.PublicKey, req *domain.SignedRequest, version uint64) error {
		seq++
		d := domain.AdminKeyEnrolled{Key: key}
		return m.Apply(domain.Event{ID: "e", Type: d.EventType(), Schema: 1, Aggregate: name, Version: version,
			Time: now, Actor: actor, Data: d, Request: req, Sequence: seq, Hash: domain.Hash{0: byte(seq)}})
	}
	if err := enrol("root", domain.ActorBootstrap, rootPub, nil, 1); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	for name, err := range map[string]error{
		"SecondBootstrap":     enrol("eve", domain.ActorBootstrap, evePub, nil, 1),
		"SelfSigned":          enrol("eve", "admin:eve", evePub, signedBy(evePub, evePriv), 1),
		"ActorNotTheSigner":   enrol("eve", "admin:eve", evePub, signedBy(rootPub, rootPriv), 1),
		"ForgedRootSignature": enrol("eve", "admin:root", evePub, &domain.SignedRequest{KeyID: domain.AdminKeyID(rootPub), Input: signedBy(rootPub, rootPriv).Input, Base: signedBy(rootPub, rootPriv).Base, Signature: make([]byte, 64)}, 1),
	} {
		if !errors.Is(err, projections.ErrAdminAuthority) {
			t.Errorf("%s: got %v, want ErrAdminAuthority", name, err)
		}
	}
	if _, _, ok := m.Lookup(domain.AdminKeyID(evePub)); ok {
		t.Fatal("eve's key is enrolled")
	}
	if err := enrol("eve", "admin:root", evePub, signedBy(rootPub, rootPriv), 1); err != nil {
		t.Fatalf("root enrols eve: %v", err)
	}
	if name, _, ok := m.Lookup(domain.AdminKeyID(evePub)); !ok || name != "eve" {
		t.Errorf("Lookup eve: got %q, %v", name, ok)
	}
}
