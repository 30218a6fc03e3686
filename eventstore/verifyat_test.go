package eventstore_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestStore_VerifyAt: a signature over a snapshot or the like verifies by
// the keys the log trusts at the sequence named, not at others; a
// sequence beyond the log's end is refused and leaves the store's view of
// the trust events as it was, so that a key added afterwards is still
// trusted from its event on (a made-up far sequence must not make the
// store take trust events it never read as folded).
func TestStore_VerifyAt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.RunServer(t)
	w, err := eventstore.New(ctx, natstest.Connect(t, srv), eventstore.WithMemoryStorage(), eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := eventstore.New(ctx, natstest.Connect(t, srv), eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("a snapshot")
	ledgerID := eventstore.KeyID(testkeys.LedgerPublic())
	head, err := w.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.VerifyAt(ctx, head, ledgerID, msg, ed25519.Sign(testkeys.Ledger(), msg)); err != nil {
		t.Fatalf("ledger key at the head: %v", err)
	}
	if err := r.VerifyAt(ctx, head, ledgerID, msg, ed25519.Sign(testkeys.Key("intruder"), msg)); !errors.Is(err, eventstore.ErrForged) {
		t.Errorf("a stranger's signature: got %v, want ErrForged", err)
	}
	if err := r.VerifyAt(ctx, head+1_000_000, ledgerID, msg, ed25519.Sign(testkeys.Ledger(), msg)); !errors.Is(err, eventstore.ErrForged) {
		t.Errorf("beyond the log: got %v, want ErrForged", err)
	}
	second := testkeys.Key("second")
	added, err := w.AddLedgerKey(ctx, second.Public().(ed25519.PublicKey), "rotation", "system")
	if err != nil {
		t.Fatal(err)
	}
	secondID := eventstore.KeyID(second.Public().(ed25519.PublicKey))
	if err := r.VerifyAt(ctx, added, secondID, msg, ed25519.Sign(second, msg)); err != nil {
		t.Errorf("a key added after a look beyond the log: %v, want trusted from its event", err)
	}
	if err := r.VerifyAt(ctx, added-1, secondID, msg, ed25519.Sign(second, msg)); !errors.Is(err, eventstore.ErrForged) {
		t.Errorf("the added key before its event: got %v, want ErrForged", err)
	}
}
