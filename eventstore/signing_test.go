package eventstore_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// collect subscribes from the start and returns a function that waits
// until n messages were delivered and returns them with their errors.
func collect(t *testing.T, s *eventstore.Store) func(n int) ([]domain.Event, []error) {
	t.Helper()
	var mu sync.Mutex
	var events []domain.Event
	var errs []error
	sub, err := s.Subscribe(context.Background(), 0, func(e domain.Event, err error) {
		mu.Lock()
		defer mu.Unlock()
		events, errs = append(events, e), append(errs, err)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return func(n int) ([]domain.Event, []error) {
		natstest.Eventually(t, 5*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(events) >= n
		}, "messages delivered")
		mu.Lock()
		defer mu.Unlock()
		return append([]domain.Event(nil), events...), append([]error(nil), errs...)
	}
}

func TestStore_Signatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	key := testkeys.Ledger()
	writer, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(key))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := eventstore.New(ctx, natstest.Connect(t, srv), eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if got := reader.TrustedKeys(); len(got) != 1 || !got[0].Equal(key.Public()) {
		t.Fatalf("reader trusts %d keys, want exactly the writer's", len(got))
	}
	wait := collect(t, reader)
	js, _ := jetstream.New(nc)

	// 1: genuine.
	if _, err := writer.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 1)}); err != nil {
		t.Fatal(err)
	}
	// 2: unsigned, straight to the stream.
	data, _ := domain.EncodeEvent(withID(keyEvent(apiKey, 2), "01JH6Z3Q8X4N6V2R9T5M7K3B5A"))
	if _, err := js.Publish(ctx, writer.Subject(domain.CategoryKey, apiKey), data); err != nil {
		t.Fatal(err)
	}
	// 3: signed by a key nobody registered.
	stranger := testkeys.Key("stranger")
	m := nats.NewMsg(writer.Subject(domain.CategoryKey, apiKey))
	m.Data = data
	eventstore.Sign(stranger, m)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	// 4: a genuine signed event copied onto another key's subject.
	const other = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B6B"
	copied := nats.NewMsg(writer.Subject(domain.CategoryKey, apiKey))
	copied.Data = data
	eventstore.Sign(key, copied)
	copied.Subject = writer.Subject(domain.CategoryKey, other)
	if _, err := js.PublishMsg(ctx, copied); err != nil {
		t.Fatal(err)
	}
	// 5: payload altered after signing.
	altered := nats.NewMsg(writer.Subject(domain.CategoryKey, apiKey))
	altered.Data = data
	eventstore.Sign(key, altered)
	altered.Data = append([]byte(nil), data...)
	altered.Data[len(altered.Data)-3] ^= 1
	if _, err := js.PublishMsg(ctx, altered); err != nil {
		t.Fatal(err)
	}
	// 7: an attacker's key_added for their own key, signed by that key.
	var strangerPub domain.PublicKey
	copy(strangerPub[:], stranger.Public().(ed25519.PublicKey))
	forgedAdd, _ := domain.EncodeEvent(domain.Event{ID: "01JH6Z3Q8X4N6V2R9T5M7K3B5F", Type: domain.TypeLedgerKeyAdded,
		Schema: 1, Aggregate: domain.TrustAggregate, Version: 2, Time: t0, Actor: "system",
		Data: domain.LedgerKeyAdded{Key: strangerPub}})
	fa := nats.NewMsg(writer.Subject(domain.CategoryLedger, domain.TrustAggregate))
	fa.Data = forgedAdd
	eventstore.Sign(stranger, fa)
	if _, err := js.PublishMsg(ctx, fa); err != nil {
		t.Fatal(err)
	}
	// A second ledger's key is not trusted until a trusted key adds it.
	second := testkeys.Key("second ledger")
	if _, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(second)); !errors.Is(err, eventstore.ErrUntrustedSigningKey) ||
		domain.KindOf(err) != domain.Invalid || !strings.Contains(err.Error(), "ledger-keys add") {
		t.Fatalf("second ledger before its key was added: got %v, want ErrUntrustedSigningKey", err)
	}
	// 8: the ledger adds the second key; 9: the second ledger writes.
	if _, err := writer.AddLedgerKey(ctx, second.Public().(ed25519.PublicKey), "second ledger", "system"); err != nil {
		t.Fatal(err)
	}
	writer2, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer2.Append(ctx, eventstore.Pending{Event: keyEvent(other, 1), ExpectedSeq: 5}); err != nil {
		t.Fatal(err)
	}

	events, errs := wait(9)
	for i, want := range []bool{false, false, true, true, true, true, true, false, false} {
		if got := errors.Is(errs[i], eventstore.ErrForged); got != want {
			t.Errorf("message %d: got forged=%v (%v), want %v", i+1, got, errs[i], want)
		}
	}
	if events[4].Aggregate != other || events[2].Aggregate != apiKey {
		t.Errorf("forged messages are named by their subject: got %q and %q", events[4].Aggregate, events[2].Aggregate)
	}

	t.Run("PinnedFollowsTheChain", func(t *testing.T) {
		pinned, err := eventstore.New(ctx, natstest.Connect(t, srv), eventstore.ReadOnly(),
			eventstore.WithTrustedKeys(key.Public().(ed25519.PublicKey)))
		if err != nil {
			t.Fatal(err)
		}
		_, errs := collect(t, pinned)(9)
		if errs[1] != nil || errs[8] != nil || !errors.Is(errs[6], eventstore.ErrForged) {
			t.Fatalf("got %v, %v and %v, want the ledger's and the added key's trusted and the attacker's refused", errs[1], errs[8], errs[6])
		}
	})

	t.Run("PinnedRefusesAnotherGenesis", func(t *testing.T) {
		_, err := eventstore.New(ctx, natstest.Connect(t, srv), eventstore.ReadOnly(),
			eventstore.WithTrustedKeys(stranger.Public().(ed25519.PublicKey)))
		if err == nil || !strings.Contains(err.Error(), "pinned") {
			t.Fatalf("got %v, want a refusal of a log whose genesis no pinned key signed", err)
		}
	})

	t.Run("LoadSkipsForged", func(t *testing.T) {
		loaded, _, err := reader.Load(ctx, domain.CategoryKey, apiKey)
		if err != nil || len(loaded) != 1 {
			t.Fatalf("got %d events (%v), want only the genuine one", len(loaded), err)
		}
	})
}

func TestStore_ReadOnlyNeedsKeys(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	if _, err := eventstore.New(ctx, nc, eventstore.ReadOnly()); err == nil {
		t.Fatal("got a read-only store on a missing stream, want an error")
	}
	t.Run("NoGenesis", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		js, _ := jetstream.New(nc)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NOGENESIS", Subjects: []string{"ng.>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		// A reader waits for a genesis until its context ends, then refuses.
		waitCtx, waitCancel := context.WithTimeout(ctx, time.Second)
		defer waitCancel()
		_, err := eventstore.New(waitCtx, nc, eventstore.ReadOnly(), eventstore.WithStream("NOGENESIS"), eventstore.WithSubjectPrefix("ng"))
		if err == nil || !strings.Contains(err.Error(), "no genesis") {
			t.Fatalf("got %v, want a refusal of a log without a genesis", err)
		}
	})
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), eventstore.DefaultStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("got %v, want the read-only store to create nothing", err)
	}
}

func withID(e domain.Event, id string) domain.Event {
	e.ID = id
	return e
}
