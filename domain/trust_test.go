package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

func trustEvent(typ string, version, seq uint64, prev domain.Hash, data domain.EventData) domain.Event {
	return domain.Event{ID: "t", Type: typ, Schema: 1, Aggregate: domain.TrustAggregate, Version: version,
		Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Actor: "system", Prev: prev, Data: data,
		Sequence: seq, Hash: domain.Hash{0: byte(seq)}}
}

func TestTrust_Apply(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := domain.PublicKey{0: 1}, domain.PublicKey{0: 2}, domain.PublicKey{0: 3}
	genesis := trustEvent(domain.TypeLedgerGenesis, 1, 1, domain.Hash{}, domain.LedgerGenesis{Keys: []domain.PublicKey{k1}})
	var tr domain.Trust
	if _, ok := tr.KeyAt(k1.ID(), 5); ok {
		t.Fatal("KeyAt before the genesis: got trusted, want nothing trusted")
	}
	if err := tr.Apply(trustEvent(domain.TypeLedgerKeyAdded, 1, 1, domain.Hash{}, domain.LedgerKeyAdded{Key: k2}), k1.ID()); !errors.Is(err, domain.ErrNoGenesis) {
		t.Fatalf("key_added before the genesis: got %v, want ErrNoGenesis", err)
	}
	if err := tr.Apply(genesis, k2.ID()); !errors.Is(err, domain.ErrUntrustedSigner) {
		t.Fatalf("genesis signed by a key it does not name: got %v, want ErrUntrustedSigner", err)
	}
	if err := tr.Apply(genesis, k1.ID()); err != nil {
		t.Fatalf("genesis: got %v, want nil", err)
	}
	if err := tr.Apply(trustEvent(domain.TypeLedgerGenesis, 1, 2, domain.Hash{}, domain.LedgerGenesis{Keys: []domain.PublicKey{k2}}), k2.ID()); !errors.Is(err, domain.ErrSecondGenesis) {
		t.Fatalf("second genesis: got %v, want ErrSecondGenesis", err)
	}
	// An attacker's key adding itself is refused; so is an event out of the chain.
	if err := tr.Apply(trustEvent(domain.TypeLedgerKeyAdded, 2, 3, genesis.Hash, domain.LedgerKeyAdded{Key: k3}), k3.ID()); !errors.Is(err, domain.ErrUntrustedSigner) {
		t.Fatalf("key_added signed by an untrusted key: got %v, want ErrUntrustedSigner", err)
	}
	if err := tr.Apply(trustEvent(domain.TypeLedgerKeyAdded, 3, 3, genesis.Hash, domain.LedgerKeyAdded{Key: k2}), k1.ID()); !errors.Is(err, domain.ErrTrustOrder) {
		t.Fatalf("key_added with a wrong version: got %v, want ErrTrustOrder", err)
	}
	if err := tr.Apply(trustEvent(domain.TypeLedgerKeyAdded, 2, 3, genesis.Hash, domain.LedgerKeyAdded{Key: k1}), k1.ID()); !errors.Is(err, domain.ErrKeyTrusted) {
		t.Fatalf("adding a trusted key: got %v, want ErrKeyTrusted", err)
	}
	if err := tr.Apply(trustEvent(domain.TypeLedgerKeyRetired, 2, 3, genesis.Hash, domain.LedgerKeyRetired{Key: k1}), k1.ID()); !errors.Is(err, domain.ErrLastKey) {
		t.Fatalf("retiring the last key: got %v, want ErrLastKey", err)
	}
	added := trustEvent(domain.TypeLedgerKeyAdded, 2, 10, genesis.Hash, domain.LedgerKeyAdded{Key: k2})
	if err := tr.Apply(added, k1.ID()); err != nil {
		t.Fatalf("key_added: got %v, want nil", err)
	}
	retired := trustEvent(domain.TypeLedgerKeyRetired, 3, 20, added.Hash, domain.LedgerKeyRetired{Key: k1})
	if err := tr.Apply(retired, k2.ID()); err != nil {
		t.Fatalf("key_retired: got %v, want nil", err)
	}
	for _, tc := range []struct {
		key  domain.PublicKey
		seq  uint64
		want bool
	}{
		{k1, 0, true}, {k1, 1, true}, {k1, 19, true}, {k1, 20, false}, {k1, 100, false},
		{k2, 9, false}, {k2, 10, true}, {k2, 100, true}, {k3, 15, false},
	} {
		if _, got := tr.KeyAt(tc.key.ID(), tc.seq); got != tc.want {
			t.Errorf("KeyAt(%s, %d): got %v, want %v", tc.key.ID(), tc.seq, got, tc.want)
		}
	}
	if err := tr.Apply(trustEvent(domain.TypeLedgerKeyAdded, 4, 30, retired.Hash, domain.LedgerKeyAdded{Key: k1}), k2.ID()); !errors.Is(err, domain.ErrKeyKnown) {
		t.Fatalf("re-adding a retired key: got %v, want ErrKeyKnown", err)
	}
	if err := tr.Apply(trustEvent(domain.TypeLedgerKeyAdded, 4, 30, retired.Hash, domain.LedgerKeyAdded{Key: k3}), k1.ID()); !errors.Is(err, domain.ErrUntrustedSigner) {
		t.Fatalf("key_added signed by a retired key: got %v, want ErrUntrustedSigner", err)
	}
	if got := len(tr.TrustedAt(25)); got != 1 {
		t.Errorf("TrustedAt(25): got %d keys, want 1", got)
	}
}
