package eventstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestNew_UpgradeWithoutGenesis: a log written before trust events has no
// genesis. The ledger opening it appends one naming its key, says so, and
// the earlier events it signed stay trusted; others' do not.
func TestNew_UpgradeWithoutGenesis(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventstore.DefaultStream, Subjects: []string{"keyledger.>"},
		Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	old := func(key string, e domain.Event) {
		data, _ := domain.EncodeEvent(e)
		m := nats.NewMsg("keyledger.key." + e.Aggregate)
		m.Data = data
		eventstore.Sign(testkeys.Key(key), m)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	const other = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B6B"
	old("ledger", withID(keyEvent(apiKey, 1), "01JH6Z3Q8X4N6V2R9T5M7K3B8A"))
	old("stranger", withID(keyEvent(other, 1), "01JH6Z3Q8X4N6V2R9T5M7K3B8B"))

	// A reader waits for a genesis until its context ends, then refuses.
	waitCtx, waitCancel := context.WithTimeout(ctx, time.Second)
	defer waitCancel()
	if _, err := eventstore.New(waitCtx, nc, eventstore.ReadOnly()); err == nil || !strings.Contains(err.Error(), "no genesis") {
		t.Fatalf("reader before the upgrade: got %v, want a refusal", err)
	}
	w, err := eventstore.New(ctx, nc, eventstore.WithMemoryStorage(), eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatal(err)
	}
	if note := w.GenesisNote(); !strings.Contains(note, "sequence 3") || !strings.Contains(note, "upgrade") {
		t.Errorf("GenesisNote: got %q, want the upgrade at sequence 3", note)
	}
	r, err := eventstore.New(ctx, natstest.Connect(t, srv), eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	_, errs := collect(t, r)(3)
	if errs[0] != nil || !errors.Is(errs[1], eventstore.ErrForged) || errs[2] != nil {
		t.Errorf("got %v, %v, %v; want the ledger's old event trusted, the stranger's forged, the genesis trusted", errs[0], errs[1], errs[2])
	}
	// Opening again appends nothing.
	w2, err := eventstore.New(ctx, nc, eventstore.WithMemoryStorage(), eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatal(err)
	}
	if note := w2.GenesisNote(); note != "" {
		t.Fatalf("second open: got %q, want no second genesis", note)
	}
}
