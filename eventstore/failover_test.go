package eventstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestAppend_RetriesUntilTheStreamHasALeader appends while the stream has
// no leader (two of its three nodes down, the store's own node up): the
// append must try again, under the same message id, and succeed once a
// leader is elected, within its deadline, storing the event once - not
// give up after one attempt nobody answered.
func TestAppend_RetriesUntilTheStreamHasALeader(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	c := natstest.RunCluster(t, 3)
	ctx := t.Context()
	setup, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(setup.Close)
	if err := eventstore.SetUp(ctx, setup, eventstore.WithReplicas(3)); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitStreamCurrent(t, eventstore.DefaultStream)
	kept := (leader + 1) % c.Len()
	other := (leader + 2) % c.Len()
	// The store talks to the node that stays up, and to it alone.
	nc, err := nats.Connect(c.URL(kept), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	store, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Every attempt is a message on the aggregate's subject: a plain
	// subscriber on the same node counts them.
	const k = "ak_01JH6Z3Q8X4N6V2R9T5M7K3C6H"
	var attempts atomic.Int64
	sub, err := nc.Subscribe(store.Subject(domain.CategoryKey, k), func(*nats.Msg) { attempts.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	c.Shutdown(leader)
	c.Shutdown(other)
	type result struct {
		seqs []uint64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		seqs, err := store.Append(actx, eventstore.Pending{Event: keyEvent(k, 1)})
		done <- result{seqs, err}
	}()
	natstest.Eventually(t, 30*time.Second, func() bool {
		select {
		case r := <-done:
			t.Fatalf("Append returned %v, %v while the stream had no leader; want it to keep trying", r.seqs, r.err)
		default:
		}
		return attempts.Load() >= 2
	}, "the append tried again while the stream had no leader")
	c.Restart(t, leader)
	c.Restart(t, other)
	var r result
	select {
	case r = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("Append did not return")
	}
	if r.err != nil {
		t.Fatalf("Append after %d attempts: %v; want it stored once the stream has a leader again", attempts.Load(), r.err)
	}
	events, last, err := store.Load(ctx, domain.CategoryKey, k)
	if err != nil || len(events) != 1 || last != r.seqs[0] {
		t.Fatalf("Load: %d events, last %d (%v); want the one event at %d", len(events), last, err, r.seqs[0])
	}
	t.Logf("stored at %d after %d attempts", r.seqs[0], attempts.Load())
}

// TestAppend_BatchRetryRecognisesItsOwnSuccess sends an atomic batch that
// was already stored again, as a retry whose first attempt's
// acknowledgement was lost does: same message ids, expected sequences
// that no longer hold. It must get the stored sequences back, not a
// Conflict, and store nothing more.
func TestAppend_BatchRetryRecognisesItsOwnSuccess(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	const k = "ak_01JH6Z3Q8X4N6V2R9T5M7K3C7J"
	batch := []eventstore.Pending{{Event: keyEvent(k, 1)}, {Event: keyEvent(k, 2)}}
	first, err := s.Append(ctx, batch...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx, batch...) // the ids Append gave them stay
	if err != nil {
		t.Fatalf("retry: %v (kind %v), want the stored sequences", err, domain.KindOf(err))
	}
	if len(again) != 2 || again[0] != first[0] || again[1] != first[1] {
		t.Fatalf("retry got %v, want %v", again, first)
	}
	events, _, err := s.Load(ctx, domain.CategoryKey, k)
	if err != nil || len(events) != 2 {
		t.Fatalf("got %d events (%v), want 2", len(events), err)
	}
}
