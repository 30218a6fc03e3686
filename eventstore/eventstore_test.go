package eventstore_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T) *eventstore.Store {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	s, err := eventstore.New(context.Background(), nc, eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func keyEvent(apiKey string, version uint64) domain.Event {
	if version == 1 {
		return domain.Event{Type: domain.TypeKeyCreated, Schema: domain.KeyPolicySchema, Aggregate: apiKey, Version: 1,
			Time: t0, Actor: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C",
			Data: domain.KeyCreated{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", PublicKey: domain.PublicKey{1}}}
	}
	return domain.Event{Type: domain.TypeKeySecretRegenerated, Schema: domain.KeySecretSchema, Aggregate: apiKey, Version: version,
		Time: t0, Actor: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Data: domain.KeySecretRegenerated{PublicKey: domain.PublicKey{2}}}
}

const apiKey = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"

func TestStore_Append(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)

	t.Run("OK", func(t *testing.T) {
		seqs, err := s.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 1)})
		if err != nil || len(seqs) != 1 || seqs[0] == 0 {
			t.Fatalf("got %v, %v, want one sequence", seqs, err)
		}
		events, last, err := s.Load(ctx, domain.CategoryKey, apiKey)
		if err != nil || len(events) != 1 || last != seqs[0] || events[0].Sequence != seqs[0] {
			t.Fatalf("Load: got %d events, last %d, err %v; want 1 at %d", len(events), last, err, seqs[0])
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		_, err := s.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 1), ExpectedSeq: 0})
		if got := domain.KindOf(err); got != domain.Conflict {
			t.Fatalf("got %v (%v), want %v", got, err, domain.Conflict)
		}
	})

	t.Run("DuplicateMsgIDStoresOnce", func(t *testing.T) {
		const k = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B2D"
		e := keyEvent(k, 1)
		e.ID = "01JH6Z3Q8X4N6V2R9T5M7K3B2D"
		first, err := s.Append(ctx, eventstore.Pending{Event: e})
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.Append(ctx, eventstore.Pending{Event: e})
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if again[0] != first[0] {
			t.Fatalf("retry got sequence %d, want %d", again[0], first[0])
		}
		events, _, err := s.Load(ctx, domain.CategoryKey, k)
		if err != nil || len(events) != 1 {
			t.Fatalf("got %d events (%v), want 1", len(events), err)
		}
	})

	t.Run("BatchIsAtomic", func(t *testing.T) {
		emailKey := domain.LegacyEmailAggregate("a@example.com") // any 64 hex digits
		events, err := domain.Register(domain.RegisterUser{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B3E",
			EmailKey: emailKey, Personal: "sealed"}, t0)
		if err != nil {
			t.Fatal(err)
		}
		seqs, err := s.Append(ctx, eventstore.Pending{Event: events[0]}, eventstore.Pending{Event: events[1]})
		if err != nil || len(seqs) != 2 || seqs[1] != seqs[0]+1 {
			t.Fatalf("got %v, %v; want two consecutive sequences", seqs, err)
		}
		// The same email for another user: the reservation fails, so the
		// second user's event must not be stored either.
		other, _ := domain.Register(domain.RegisterUser{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B4F",
			EmailKey: emailKey, Personal: "sealed"}, t0)
		_, err = s.Append(ctx, eventstore.Pending{Event: other[0]}, eventstore.Pending{Event: other[1]})
		if got := domain.KindOf(err); got != domain.Conflict {
			t.Fatalf("got %v (%v), want %v", got, err, domain.Conflict)
		}
		stored, _, err := s.Load(ctx, domain.CategoryUser, "usr_01JH6Z3Q8X4N6V2R9T5M7K3B4F")
		if err != nil || len(stored) != 0 {
			t.Fatalf("got %d events of the losing user (%v), want 0", len(stored), err)
		}
	})

	t.Run("BatchChainsOneAggregate", func(t *testing.T) {
		// Several events of one aggregate in one batch: each chains to
		// the one before it, whose hash its writer could not know.
		const k = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B5G"
		batch := []eventstore.Pending{{Event: keyEvent(k, 1)}, {Event: keyEvent(k, 2)}, {Event: keyEvent(k, 3)}}
		if _, err := s.Append(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		events, _, err := s.Load(ctx, domain.CategoryKey, k)
		if err != nil || len(events) != 3 {
			t.Fatalf("Load: got %d events (%v), want 3", len(events), err)
		}
		for i := 1; i < len(events); i++ {
			if events[i].Prev != events[i-1].Hash {
				t.Errorf("event %d: prev %x, want the hash of event %d, %x", i+1, events[i].Prev, i, events[i-1].Hash)
			}
		}
	})
}

func TestStore_ConcurrentAppends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	seqs, err := s.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 1)})
	if err != nil {
		t.Fatal(err)
	}
	expected := seqs[0]
	for version := uint64(2); version <= 6; version++ {
		const writers = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		var wins []uint64
		conflicts := 0
		for range writers {
			wg.Go(func() {
				got, err := s.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, version), ExpectedSeq: expected})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins = append(wins, got[0])
				case domain.KindOf(err) == domain.Conflict:
					conflicts++
				default:
					t.Errorf("append: %v", err)
				}
			})
		}
		wg.Wait()
		if len(wins) != 1 || conflicts != writers-1 {
			t.Fatalf("version %d: got %d wins and %d conflicts, want 1 and %d", version, len(wins), conflicts, writers-1)
		}
		expected = wins[0]
	}
	events, _, err := s.Load(ctx, domain.CategoryKey, apiKey)
	if err != nil || len(events) != 6 {
		t.Fatalf("got %d events (%v), want 6", len(events), err)
	}
}

func TestStore_Subscribe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 1)}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []uint64
	sub, err := s.Subscribe(ctx, 0, func(e domain.Event, err error) {
		if err != nil {
			t.Errorf("event %d: %v", e.Sequence, err)
		}
		mu.Lock()
		got = append(got, e.Sequence)
		mu.Unlock()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	// A publish that JetStream rejects must never reach a subscriber.
	if _, err := s.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 2), ExpectedSeq: 99}); !errors.Is(err, err) || domain.KindOf(err) != domain.Conflict {
		t.Fatalf("got %v, want conflict", err)
	}
	if _, err := s.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 2), ExpectedSeq: 2}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	}, "the genesis and two events delivered")
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("got sequences %v, want [1 2 3]", got)
	}
	head, err := s.Head(ctx)
	if err != nil || head != 3 {
		t.Fatalf("Head: got %d, %v, want 3", head, err)
	}
}

// TestStore_AppendFailsFastWithoutNATS: with the connection to NATS lost,
// an append answers Unavailable at once instead of waiting out a timeout,
// and nothing is stored.
func TestStore_AppendFailsFastWithoutNATS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natstest.RunServer(t)
	proxy := natstest.StartProxy(t, srv.Addr().String())
	nc, err := nats.Connect(proxy.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	natstest.Eventually(t, 5*time.Second, func() bool { return !nc.IsConnected() }, "client notices the cut")
	start := time.Now()
	_, err = s.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 1)})
	if domain.KindOf(err) != domain.Unavailable {
		t.Fatalf("got %v, want unavailable", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("took %v to fail, want an immediate answer", took)
	}
	proxy.Restore()
	natstest.Eventually(t, 5*time.Second, nc.IsConnected, "client reconnects")
	if head, err := s.Head(ctx); err != nil || head != 1 {
		t.Fatalf("got head %d (%v), want nothing stored after the genesis", head, err)
	}
}
