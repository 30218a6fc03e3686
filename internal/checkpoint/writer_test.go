package checkpoint_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// timeout bounds each test's calls together (a test shares one context):
// generous, since every wait is for a condition, and a loaded machine
// running -race takes seconds to append and re-read a few thousand events.
const timeout = 90 * time.Second

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// testLog is an event log on its own embedded nats-server.
type testLog struct {
	nc    *nats.Conn
	store *eventstore.Store
}

func newLog(t testing.TB) *testLog {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	return &testLog{nc: nc, store: openStore(t, nc)}
}

// openStore opens a writable store on the log's stream (creating it).
func openStore(t testing.TB, nc *nats.Conn) *eventstore.Store {
	t.Helper()
	store, err := eventstore.New(testContext(t), nc, eventstore.WithMemoryStorage(), eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatalf("eventstore.New: %v", err)
	}
	return store
}

// createKeys appends n key.created events, one append each, and returns
// the head of the log after them.
func (l *testLog) createKeys(t testing.TB, store *eventstore.Store, n int) uint64 {
	t.Helper()
	ctx := testContext(t)
	var last uint64
	for range n {
		seqs, err := store.Append(ctx, eventstore.Pending{Event: newKeyCreated(t)})
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		last = seqs[0]
	}
	return last
}

func newKeyCreated(t testing.TB) domain.Event {
	t.Helper()
	var secret domain.Hash
	if _, err := rand.Read(secret[:]); err != nil {
		t.Fatal(err)
	}
	events, err := (&domain.Key{}).Create(domain.CreateKey{
		APIKey:     domain.APIKeyPrefix + ulid.Make().String(),
		UserID:     domain.UserIDPrefix + ulid.Make().String(),
		Name:       "test",
		SecretHash: secret,
		PublicKey:  domain.PublicKey(secret),
	}, time.Now())
	if err != nil {
		t.Fatalf("Key.Create: %v", err)
	}
	return events[0]
}

// forge publishes an unsigned copy of a key.created event straight to
// subject, as anyone with publish rights on the stream could, and returns
// its stream sequence.
func (l *testLog) forge(t testing.TB, subject string) uint64 {
	t.Helper()
	e := newKeyCreated(t)
	e.ID = ulid.Make().String()
	data, err := domain.EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(l.nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(testContext(t), subject, data)
	if err != nil {
		t.Fatalf("publish forged message: %v", err)
	}
	return ack.Sequence
}

func (l *testLog) head(t testing.TB) uint64 {
	t.Helper()
	h, err := l.store.Head(testContext(t))
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

// rawRoot builds the Merkle root of stored messages 1..size on its own,
// from the messages as JetStream holds them.
func (l *testLog) rawRoot(t testing.TB, size uint64) domain.Hash {
	t.Helper()
	ctx := testContext(t)
	js, err := jetstream.New(l.nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	tree := checkpoint.NewTree()
	for seq := uint64(1); seq <= size; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		tree.Append(eventstore.LeafHash(m.Subject, m.Data))
	}
	return tree.Root()
}

func (l *testLog) checkpoints(t testing.TB) []domain.Event {
	t.Helper()
	cps, err := l.store.Checkpoints(testContext(t))
	if err != nil {
		t.Fatalf("Checkpoints: %v", err)
	}
	return cps
}

func startWriter(t testing.TB, store *eventstore.Store, interval time.Duration) *checkpoint.Writer {
	t.Helper()
	w, err := checkpoint.Start(testContext(t), store, nil, interval)
	if err != nil {
		t.Fatalf("checkpoint.Start: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

// writeAt waits until w has seen seq, then checkpoints.
func writeAt(t testing.TB, w *checkpoint.Writer, seq uint64) domain.Event {
	t.Helper()
	ctx := testContext(t)
	if err := w.WaitFor(ctx, seq); err != nil {
		t.Fatalf("WaitFor(%d): %v", seq, err)
	}
	e, err := w.WriteNow(ctx)
	if err != nil {
		t.Fatalf("WriteNow: %v", err)
	}
	return e
}

func data(t testing.TB, e domain.Event) domain.LogCheckpoint {
	t.Helper()
	c, ok := e.Data.(domain.LogCheckpoint)
	if !ok {
		t.Fatalf("event %s at %d is not a checkpoint", e.Type, e.Sequence)
	}
	return c
}

// checkChain checks that cps are versions 1..n, each naming the previous
// one's hash.
func checkChain(t testing.TB, cps []domain.Event) {
	t.Helper()
	var prev domain.Hash
	for i, c := range cps {
		if c.Version != uint64(i+1) {
			t.Errorf("checkpoint %d at %d: version %d, want %d", i, c.Sequence, c.Version, i+1)
		}
		if c.Prev != prev {
			t.Errorf("checkpoint %d at %d: prev %x, want %x", i, c.Sequence, c.Prev, prev)
		}
		prev = c.Hash
	}
}

func TestWriter_WriteNow(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	l.createKeys(t, l.store, 5)
	w := startWriter(t, l.store, time.Hour)
	ctx := testContext(t)

	head := l.head(t)
	first := writeAt(t, w, head)
	var stored domain.Event

	t.Run("OK", func(t *testing.T) {
		c := data(t, first)
		if c.Size != head {
			t.Errorf("Size = %d, want the head %d", c.Size, head)
		}
		if want := l.rawRoot(t, head); c.Root != want {
			t.Errorf("Root = %x, want %x", c.Root, want)
		}
		if len(c.Foreign) != 0 {
			t.Errorf("Foreign = %v, want none", c.Foreign)
		}
		if first.Sequence != head+1 || first.Version != 1 || first.Prev != (domain.Hash{}) {
			t.Errorf("checkpoint at %d version %d prev %x, want at %d version 1 without prev",
				first.Sequence, first.Version, first.Prev, head+1)
		}
		cps := l.checkpoints(t)
		if len(cps) != 1 {
			t.Fatalf("got %d checkpoints in the log, want 1", len(cps))
		}
		stored = cps[0]
		if stored.Sequence != first.Sequence || data(t, stored).Root != c.Root || data(t, stored).Size != c.Size {
			t.Errorf("stored checkpoint %+v, want %+v", stored, first)
		}
	})

	t.Run("ErrNothingNew", func(t *testing.T) {
		if err := w.WaitFor(ctx, first.Sequence); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteNow(ctx); !errors.Is(err, checkpoint.ErrNothingNew) {
			t.Errorf("WriteNow on a log grown only by its checkpoint: got %v, want ErrNothingNew", err)
		}
		if n := len(l.checkpoints(t)); n != 1 {
			t.Errorf("got %d checkpoints, want 1", n)
		}
	})

	var second domain.Event
	t.Run("Next", func(t *testing.T) {
		if stored.Sequence == 0 {
			t.Skip("no first checkpoint")
		}
		head := l.createKeys(t, l.store, 3)
		second = writeAt(t, w, head)
		c := data(t, second)
		if second.Version != stored.Version+1 {
			t.Errorf("Version = %d, want %d", second.Version, stored.Version+1)
		}
		if second.Prev != stored.Hash || stored.Hash == (domain.Hash{}) {
			t.Errorf("Prev = %x, want the first checkpoint's hash %x", second.Prev, stored.Hash)
		}
		if c.Size != head {
			t.Errorf("Size = %d, want %d", c.Size, head)
		}
		if want := l.rawRoot(t, head); c.Root != want {
			t.Errorf("Root = %x, want %x", c.Root, want)
		}
		checkChain(t, l.checkpoints(t))
	})

	t.Run("Foreign", func(t *testing.T) {
		if second.Sequence == 0 {
			t.Skip("no second checkpoint")
		}
		key := newKeyCreated(t)
		if _, err := l.store.Append(ctx, eventstore.Pending{Event: key}); err != nil {
			t.Fatal(err)
		}
		forged := l.forge(t, l.store.Subject(domain.CategoryKey, key.Aggregate))
		head := l.createKeys(t, l.store, 1)
		cp := writeAt(t, w, head)
		c := data(t, cp)
		if !slices.Equal(c.Foreign, []uint64{forged}) {
			t.Errorf("Foreign = %v, want [%d]", c.Foreign, forged)
		}
		if want := l.rawRoot(t, head); c.Size != head || c.Root != want {
			t.Errorf("size %d root %x, want %d %x: a forged message is a leaf like any other", c.Size, c.Root, head, want)
		}
		// The next checkpoint covers a range without forgeries.
		head = l.createKeys(t, l.store, 1)
		if err := w.WaitFor(ctx, cp.Sequence); err != nil {
			t.Fatal(err)
		}
		next := writeAt(t, w, head)
		if f := data(t, next).Foreign; len(f) != 0 {
			t.Errorf("next checkpoint's Foreign = %v, want none", f)
		}
		checkChain(t, l.checkpoints(t))
	})
}

// TestWriter_Interval checks that a running writer checkpoints by itself.
func TestWriter_Interval(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	head := l.createKeys(t, l.store, 3)
	startWriter(t, l.store, 20*time.Millisecond)
	var cps []domain.Event
	natstest.Eventually(t, timeout, func() bool {
		cps = l.checkpoints(t)
		return len(cps) > 0
	}, "the writer checkpoints on its own")
	if c := data(t, cps[0]); c.Size != head || c.Root != l.rawRoot(t, head) {
		t.Errorf("checkpoint size %d root %x, want %d %x", c.Size, c.Root, head, l.rawRoot(t, head))
	}
}

// TestWriter_Every: a log that grows by DefaultEvery messages is
// checkpointed without waiting for the interval, so that readers never
// have to hold back more than that between two checkpoints.
func TestWriter_Every(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	startWriter(t, l.store, time.Hour)
	head := l.appendKeys(t, checkpoint.DefaultEvery+50)
	var cps []domain.Event
	natstest.Eventually(t, timeout, func() bool {
		cps = l.checkpoints(t)
		return len(cps) > 0
	}, "the writer checkpoints once the log has grown by DefaultEvery")
	if c := data(t, cps[0]); c.Size < checkpoint.DefaultEvery || c.Size > head || c.Root != l.rawRoot(t, c.Size) {
		t.Errorf("checkpoint size %d root %x, want between %d and %d with the log's root", c.Size, c.Root, checkpoint.DefaultEvery, head)
	}
}

// TestWriter_WriteNowWhileCatchingUp: a writer still folding a long log
// checkpoints what it has seen so far; checkpointing again before it has
// read its own checkpoint back must build on that checkpoint (it wrote it),
// not fail as if another writer had got there first.
func TestWriter_WriteNowWhileCatchingUp(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	ctx := testContext(t)
	head := l.appendKeys(t, 1500)
	w := startWriter(t, l.store, time.Hour)
	if err := w.WaitFor(ctx, 10); err != nil {
		t.Fatal(err)
	}
	first, err := w.WriteNow(ctx)
	if err != nil {
		t.Fatalf("first WriteNow: %v", err)
	}
	size := data(t, first).Size
	if size >= head || first.Sequence != head+1 {
		t.Fatalf("first checkpoint at %d of size %d: the writer was not catching up (head %d)", first.Sequence, size, head)
	}
	// It has seen more of the log since, but not yet its own checkpoint,
	// which is at the end.
	if err := w.WaitFor(ctx, size+1); err != nil {
		t.Fatal(err)
	}
	second, err := w.WriteNow(ctx)
	if err != nil {
		t.Fatalf("second WriteNow while catching up: %v (kind %s), want a checkpoint", err, domain.KindOf(err))
	}
	if c := data(t, second); second.Version != 2 || c.Size <= size {
		t.Errorf("second checkpoint: version %d size %d, want version 2 and size > %d", second.Version, c.Size, size)
	}
	checkChain(t, l.checkpoints(t))
}

// appendKeys appends n key.created events in atomic batches and returns
// the head of the log.
func (l *testLog) appendKeys(t testing.TB, n int) uint64 {
	t.Helper()
	ctx := testContext(t)
	var last uint64
	for n > 0 {
		batch := make([]eventstore.Pending, min(n, 100))
		for i := range batch {
			batch[i] = eventstore.Pending{Event: newKeyCreated(t)}
		}
		seqs, err := l.store.Append(ctx, batch...)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		last = seqs[len(seqs)-1]
		n -= len(batch)
	}
	return last
}

func TestWriter_SecondWriter(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	ctx := testContext(t)
	w1 := startWriter(t, l.store, time.Hour)
	writeAt(t, w1, l.createKeys(t, l.store, 4))

	// A second ledger with its own signing key joins later.
	other := openStore(t, l.nc)
	head := l.createKeys(t, other, 3)
	w2 := startWriter(t, other, time.Hour)

	t.Run("TrustsTheFirstCheckpoint", func(t *testing.T) {
		cp := writeAt(t, w2, head)
		c := data(t, cp)
		if c.Size != head || c.Root != l.rawRoot(t, head) {
			t.Errorf("size %d root %x, want %d %x", c.Size, c.Root, head, l.rawRoot(t, head))
		}
		if cp.Version != 2 {
			t.Errorf("Version = %d, want 2", cp.Version)
		}
		checkChain(t, l.checkpoints(t))

		// The first writer accepts it as the newest and builds on it.
		if err := w1.WaitFor(ctx, cp.Sequence); err != nil {
			t.Fatal(err)
		}
		if _, err := w1.WriteNow(ctx); !errors.Is(err, checkpoint.ErrNothingNew) {
			t.Errorf("first writer after the second's checkpoint: got %v, want ErrNothingNew", err)
		}
		head := l.createKeys(t, l.store, 2)
		next := writeAt(t, w1, head)
		if c := data(t, next); next.Version != 3 || c.Size != head || c.Root != l.rawRoot(t, head) {
			t.Errorf("first writer's next checkpoint: version %d size %d root %x, want 3 %d %x",
				next.Version, c.Size, c.Root, head, l.rawRoot(t, head))
		}
		checkChain(t, l.checkpoints(t))
	})

	t.Run("Race", func(t *testing.T) {
		for round := range 6 {
			head := l.createKeys(t, l.store, 2)
			before := len(l.checkpoints(t))
			writers := []*checkpoint.Writer{w1, w2}
			for _, w := range writers {
				if err := w.WaitFor(ctx, head); err != nil {
					t.Fatal(err)
				}
			}
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				cps   [2]domain.Event
				errs  [2]error
			)
			for i, w := range writers {
				wg.Go(func() {
					<-start
					cps[i], errs[i] = w.WriteNow(ctx)
				})
			}
			close(start)
			wg.Wait()

			var won domain.Event
			wins := 0
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
					won = cps[i]
				case domain.KindOf(err) == domain.Conflict, errors.Is(err, checkpoint.ErrNothingNew):
					// It lost the race, or saw the winner's checkpoint
					// before it began (the scheduler decides which).
					t.Logf("round %d, writer %d: %v", round, i+1, err)
				default:
					t.Errorf("round %d, writer %d: %v", round, i+1, err)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d writers checkpointed, want exactly 1 (errors %v)", round, wins, errs)
			}
			if after := len(l.checkpoints(t)); after != before+1 {
				t.Errorf("round %d: %d checkpoints after, want %d", round, after, before+1)
			}
			if c := data(t, won); c.Size != head || c.Root != l.rawRoot(t, head) {
				t.Errorf("round %d: size %d root %x, want %d %x", round, c.Size, c.Root, head, l.rawRoot(t, head))
			}
			for _, w := range writers {
				if err := w.WaitFor(ctx, won.Sequence); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkChain(t, l.checkpoints(t))
	})
}

// TestWriter_Behind: a writer that has not yet seen another's checkpoint
// (here: it is still folding a long log) does not checkpoint the same
// round again: it loses with a Conflict or, having caught up, finds
// nothing new.
func TestWriter_Behind(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	ctx := testContext(t)
	w1 := startWriter(t, l.store, time.Hour)
	head := l.appendKeys(t, 1500)
	if err := w1.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	w2 := startWriter(t, openStore(t, l.nc), time.Hour)
	if err := w2.WaitFor(ctx, 10); err != nil {
		t.Fatal(err)
	}
	cp, err := w1.WriteNow(ctx)
	if err != nil {
		t.Fatalf("WriteNow: %v", err)
	}
	_, err = w2.WriteNow(ctx)
	if domain.KindOf(err) != domain.Conflict && !errors.Is(err, checkpoint.ErrNothingNew) {
		t.Errorf("WriteNow of a writer behind another's checkpoint: got %v, want a Conflict or ErrNothingNew", err)
	}
	if err := w2.WaitFor(ctx, cp.Sequence); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.WriteNow(ctx); !errors.Is(err, checkpoint.ErrNothingNew) {
		t.Errorf("WriteNow once caught up: got %v, want ErrNothingNew", err)
	}
	cps := l.checkpoints(t)
	if len(cps) != 1 || data(t, cps[0]).Size != head {
		t.Errorf("got checkpoints %v, want one of size %d", cps, head)
	}
}

// TestWriter_ForgedCheckpointSubject: anyone who may publish to the stream
// can put an unsigned message on the checkpoint subject. The ledger must
// name it in its next checkpoint like any other forgery, not stop
// checkpointing for good.
func TestWriter_ForgedCheckpointSubject(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	ctx := testContext(t)
	w := startWriter(t, l.store, time.Hour)
	first := writeAt(t, w, l.createKeys(t, l.store, 2))
	if err := w.WaitFor(ctx, first.Sequence); err != nil {
		t.Fatal(err)
	}
	forged := l.forge(t, l.store.Subject(domain.CategoryLog, domain.CheckpointAggregate))
	head := l.createKeys(t, l.store, 1)
	if err := w.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	var (
		cp  domain.Event
		err error
	)
	for range 3 { // a Conflict may be retried
		if cp, err = w.WriteNow(ctx); domain.KindOf(err) != domain.Conflict {
			break
		}
	}
	if err != nil {
		t.Fatalf("WriteNow after a forged message on the checkpoint subject: %v (kind %s)", err, domain.KindOf(err))
	}
	if c := data(t, cp); !slices.Equal(c.Foreign, []uint64{forged}) || c.Size != head {
		t.Errorf("size %d foreign %v, want %d [%d]", c.Size, c.Foreign, head, forged)
	}
}

// TestWriter_RefusesRewrittenLog: a writer that starts on a log whose
// history no longer matches the newest checkpoint refuses to checkpoint it.
func TestWriter_RefusesRewrittenLog(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	w := startWriter(t, l.store, time.Hour)
	head := l.createKeys(t, l.store, 4)
	cp := writeAt(t, w, head)
	w.Close()

	rewrite(t, l.nc, func(m *jetstream.RawStreamMsg) bool { return m.Sequence != 2 })
	store := openStore(t, l.nc)
	l.store = store
	if n := len(l.checkpoints(t)); n != 1 {
		t.Fatalf("rewritten log has %d checkpoints, want 1", n)
	}
	l.createKeys(t, store, 2)
	w2 := startWriter(t, store, time.Hour)
	// It folds the log up to the checkpoint's size, then stops.
	if err := w2.WaitFor(testContext(t), data(t, cp).Size); err != nil {
		t.Fatal(err)
	}
	_, err := w2.WriteNow(testContext(t))
	if domain.KindOf(err) != domain.Internal {
		t.Errorf("WriteNow on a log that no longer matches checkpoint %d: got %v, want an Internal error", cp.Sequence, err)
	}
}

// rewrite rewrites the log as an attacker with JetStream admin rights can
// despite deny_delete and deny_purge (natstest.RewriteStream), keeping the
// messages keep accepts.
func rewrite(t testing.TB, nc *nats.Conn, keep func(m *jetstream.RawStreamMsg) bool) {
	t.Helper()
	natstest.RewriteStream(t, nc, eventstore.DefaultStream, func(m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg {
		if !keep(m) {
			return nil
		}
		return m
	})
}
