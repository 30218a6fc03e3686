package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// checked subscribes from the start with checkpoint checks and collects
// each check and, in order, what the handler saw.
type checked struct {
	mu     sync.Mutex
	checks []eventstore.CheckpointCheck
	seen   []string // "check <seq>" or "event <seq>", in the order they came
	last   uint64
}

func subscribeChecked(t *testing.T, s *eventstore.Store) *checked {
	t.Helper()
	c := &checked{}
	sub, err := s.Subscribe(context.Background(), 0, func(e domain.Event, _ error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.seen = append(c.seen, "event "+e.Type)
		c.last = e.Sequence
	}, nil, eventstore.WithCheckpointCheck(func(cc eventstore.CheckpointCheck) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.checks = append(c.checks, cc)
		c.seen = append(c.seen, "check")
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return c
}

func (c *checked) waitFor(t *testing.T, seq uint64) []eventstore.CheckpointCheck {
	t.Helper()
	natstest.Eventually(t, 10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last >= seq
	}, "delivered")
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.CheckpointCheck(nil), c.checks...)
}

// TestSubscribe_CheckpointCheck: a subscription that checks checkpoints
// finds the ledger's own checkpoints matching, on the fast path from a
// checkpointed log and live; a checkpoint the ledger's key signed over
// another log is reported as a mismatch before the handler sees it.
func TestSubscribe_CheckpointCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natstest.RunServer(t)
	store, err := eventstore.New(ctx, natstest.Connect(t, srv), eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B2C", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B3C"}
	if _, err := store.Append(ctx, eventstore.Pending{Event: keyEvent(keys[0], 1)}); err != nil {
		t.Fatal(err)
	}
	w, err := checkpoint.Start(ctx, store, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write := func() domain.Event {
		t.Helper()
		head, err := store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		cp, err := w.WriteNow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	first := write()

	// From a checkpointed log: the fast path, then live.
	c := subscribeChecked(t, store)
	if got := c.waitFor(t, first.Sequence); len(got) != 1 || got[0].Err != nil || got[0].Seq != first.Sequence {
		t.Fatalf("checks after catching up: got %+v, want one match at %d", got, first.Sequence)
	}
	if _, err := store.Append(ctx, eventstore.Pending{Event: keyEvent(keys[1], 1)}); err != nil {
		t.Fatal(err)
	}
	second := write()
	got := c.waitFor(t, second.Sequence)
	if len(got) != 2 || got[1].Err != nil || got[1].Checkpoint.Size != second.Data.(domain.LogCheckpoint).Size {
		t.Fatalf("checks after a live checkpoint: got %+v, want two matches", got)
	}

	// A checkpoint signed with the ledger's key whose root is not this
	// log's: what the node applied is not what was signed.
	if _, err := store.Append(ctx, eventstore.Pending{Event: keyEvent(keys[2], 1)}); err != nil {
		t.Fatal(err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := second
	bad.ID, bad.Version, bad.Prev, bad.Hash, bad.Sequence = "", second.Version+1, second.Hash, domain.Hash{}, 0
	bad.Data = domain.LogCheckpoint{Size: head, Root: domain.Hash{0: 0xba, 31: 0xd0}}
	seqs, err := store.Append(ctx, eventstore.Pending{Event: bad, ExpectedSeq: second.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	got = c.waitFor(t, seqs[0])
	if len(got) != 3 || !errors.Is(got[2].Err, eventstore.ErrCheckpointMismatch) || got[2].Seq != seqs[0] {
		t.Fatalf("checks after a wrong checkpoint: got %+v, want a mismatch at %d", got, seqs[0])
	}
	c.mu.Lock()
	order := c.seen[len(c.seen)-2:]
	c.mu.Unlock()
	if order[0] != "check" || order[1] != "event "+domain.TypeLogCheckpoint {
		t.Errorf("got %v, want the check before the handler sees the checkpoint", order)
	}

	// A fresh subscriber from the start finds the same.
	got = subscribeChecked(t, store).waitFor(t, seqs[0])
	if len(got) != 3 || got[0].Err != nil || got[1].Err != nil || !errors.Is(got[2].Err, eventstore.ErrCheckpointMismatch) {
		t.Fatalf("a new subscriber: got %+v, want two matches and a mismatch", got)
	}

	t.Run("NotFromTheStart", func(t *testing.T) {
		_, err := store.Subscribe(ctx, 2, func(domain.Event, error) {}, nil, eventstore.WithCheckpointCheck(func(eventstore.CheckpointCheck) {}))
		if domain.KindOf(err) != domain.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
}
