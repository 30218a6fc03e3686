package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestSubscribe_CheckpointFastPath: from the start of a checkpointed log,
// a subscriber delivers exactly what a fully verifying one does: the same
// events, and the same messages refused as forged (those the checkpoint
// names), and it reports nothing wrong.
func TestSubscribe_CheckpointFastPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	store, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	const keys = 50
	for i := range keys {
		const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
		k := "ak_01JH6Z3Q8X4N6V2R9T5M7K" + string(crockford[i/32]) + string(crockford[i%32]) + "00"
		if !domain.ValidAPIKey(k) {
			t.Fatalf("bad test key %s", k)
		}
		if _, err := store.Append(ctx, eventstore.Pending{Event: keyEvent(k, 1)}); err != nil {
			t.Fatal(err)
		}
		if i == 20 { // an unsigned message in the middle
			data, _ := domain.EncodeEvent(withID(keyEvent(k, 2), "01JH6Z3Q8X4N6V2R9T5M7K3B7C"))
			if _, err := js.Publish(ctx, store.Subject(domain.CategoryKey, k), data); err != nil {
				t.Fatal(err)
			}
		}
	}
	w, err := checkpoint.Start(ctx, store, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WaitFor(ctx, keys+2); err != nil { // the genesis, the keys, the unsigned one
		t.Fatal(err)
	}
	cp, err := w.WriteNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := cp.Data.(domain.LogCheckpoint).Foreign; len(got) != 1 || got[0] != 23 {
		t.Fatalf("checkpoint names %v as foreign, want [23]", got)
	}

	type delivery struct {
		seq    uint64
		typ    string
		forged bool
	}
	read := func(s *eventstore.Store) ([]delivery, []error) {
		var mu sync.Mutex
		var got []delivery
		var problems []error
		sub, err := s.Subscribe(ctx, 0, func(e domain.Event, err error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, delivery{e.Sequence, e.Type, errors.Is(err, eventstore.ErrForged)})
		}, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			problems = append(problems, err)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Stop()
		natstest.Eventually(t, 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= int(cp.Sequence)
		}, "every message delivered")
		mu.Lock()
		defer mu.Unlock()
		return append([]delivery(nil), got...), append([]error(nil), problems...)
	}
	reader, err := eventstore.New(ctx, natstest.Connect(t, srv), eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	got, problems := read(reader)
	if len(problems) != 0 {
		t.Fatalf("got problems %v, want none", problems)
	}
	for _, d := range got {
		wantForged := d.seq == 23
		if d.forged != wantForged {
			t.Errorf("seq %d: got forged=%v, want %v", d.seq, d.forged, wantForged)
		}
	}
	if got[len(got)-1].typ != domain.TypeLogCheckpoint {
		t.Fatalf("got last %v, want the checkpoint", got[len(got)-1])
	}
}
