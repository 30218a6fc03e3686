package projections_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
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
	"github.com/keyledger/keyledger/projections"
)

// logBuffer collects log output written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitApplied(t *testing.T, p *projections.Projector, seq uint64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return p.WaitApplied(ctx, seq)
}

func wantSkipped(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, projections.ErrSkipped) || !strings.Contains(err.Error(), reason) {
		t.Errorf("got %v, want ErrSkipped saying %q", err, reason)
	}
}

func TestProjector_WaitApplied(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		l := newLog(t)
		p, _, _ := startProjector(t, l.store)
		_, seq := l.createKey(t, newUserID())
		if err := waitApplied(t, p, seq); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})

	t.Run("ErrSkippedForged", func(t *testing.T) {
		l := newLog(t)
		p, _, _ := startProjector(t, l.store)
		forged := l.publishRaw(t, l.store.Subject(domain.CategoryKey, newAPIKey()), []byte(`{}`))
		_, seq := l.createKey(t, newUserID())
		wantSkipped(t, waitApplied(t, p, forged), "not signed by a trusted ledger key")
		if err := waitApplied(t, p, seq); err != nil {
			t.Errorf("the next event: got %v, want nil", err)
		}
	})

	t.Run("ErrSkippedDoesNotApply", func(t *testing.T) {
		l := newLog(t)
		p, _, _ := startProjector(t, l.store)
		// Signed and well formed, but a second creation of the same key.
		k, created := l.createKey(t, newUserID())
		seq := l.append(t, eventstore.Pending{Event: keyCreated(k, newUserID(), 1), ExpectedSeq: created})[0]
		wantSkipped(t, waitApplied(t, p, seq), "does not apply")
	})

	t.Run("ErrSkippedDeleted", func(t *testing.T) {
		// A stream an attacker re-created without delete protection: the
		// ledger's signed event is acknowledged, then deleted before a
		// reader has read it.
		nc := natstest.Connect(t, natstest.RunServer(t))
		ctx := context.Background()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventstore.DefaultStream,
			Subjects: []string{eventstore.DefaultSubjectPrefix + ".>"}, Storage: jetstream.MemoryStorage})
		if err != nil {
			t.Fatal(err)
		}
		store, err := eventstore.New(ctx, nc, eventstore.ReadOnly(), eventstore.WithTrustedKeys(testkeys.LedgerPublic()))
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for range 2 {
			e := keyCreated(newAPIKey(), newUserID(), 0)
			e.ID = ulid.Make().String()
			data, err := domain.EncodeEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			m := nats.NewMsg(store.Subject(e.Category(), e.Aggregate))
			m.Data = data
			eventstore.Sign(testkeys.Ledger(), m)
			ack, err := js.PublishMsg(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, ack.Sequence)
		}
		if err := stream.DeleteMsg(ctx, seqs[0]); err != nil {
			t.Fatal(err)
		}
		p, _, _ := startProjector(t, store)
		wantSkipped(t, waitApplied(t, p, seqs[0]), "no longer in the log")
		if err := waitApplied(t, p, seqs[1]); err != nil {
			t.Errorf("the next event: got %v, want nil", err)
		}
	})

	t.Run("ErrSkippedForgotten", func(t *testing.T) {
		// A flood of forged messages after an event must not let an
		// unknown outcome pass for applied: past what the projector
		// remembers, it answers skipped.
		l := newLog(t)
		p, _, _ := startProjector(t, l.store)
		_, seq := l.createKey(t, newUserID())
		ctx := context.Background()
		js, err := jetstream.New(l.nc)
		if err != nil {
			t.Fatal(err)
		}
		subject := l.store.Subject(domain.CategoryKey, newAPIKey())
		var last uint64
		for range 1100 {
			ack, err := js.Publish(ctx, subject, []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			last = ack.Sequence
		}
		waitFor(t, p, last)
		wantSkipped(t, waitApplied(t, p, seq), "cannot tell")
		wantSkipped(t, waitApplied(t, p, last), "not signed by a trusted ledger key")
	})

	t.Run("ErrUnavailable", func(t *testing.T) {
		l := newLog(t)
		p, _, _ := startProjector(t, l.store)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.WaitApplied(ctx, l.head(t)+1); domain.KindOf(err) != domain.Unavailable {
			t.Errorf("got %v, want Unavailable", err)
		}
	})
}

// TestProjector_SubscriptionRecovered: a projector that logged trouble with
// its subscription logs its recovery once, also while no event arrives.
// The trouble is the ordered consumer deleted under it (as an operator, an
// attacker or a lost cluster node can): a cut connection alone is no
// trouble, the client recreates the consumer as it reconnects.
func TestProjector_SubscriptionRecovered(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	owner := newUserID()
	k, created := l.createKey(t, owner)
	logs := &logBuffer{}
	keys := projections.NewKeys()
	p, err := projections.New(l.store, slog.New(slog.NewTextHandler(logs, nil)), keys)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	js, err := jetstream.New(l.nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, l.store.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	names := stream.ConsumerNames(ctx)
	var deleted int
	for name := range names.Name() {
		if err := stream.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if names.Err() != nil || deleted == 0 {
		t.Fatalf("deleted %d consumers (%v), want the projector's", deleted, names.Err())
	}
	natstest.Eventually(t, waitTimeout, func() bool { return strings.Contains(logs.String(), "event subscription trouble") },
		"a subscription trouble line")
	natstest.Eventually(t, waitTimeout, func() bool { return strings.Contains(logs.String(), "event subscription recovered") },
		"a subscription recovered line without a new event")

	// The feed works again, and its first event is no second recovery.
	seq := l.append(t, eventstore.Pending{Event: keyRevoked(k, owner, 2, 0), ExpectedSeq: created})[0]
	waitFor(t, p, seq)
	if got, _, _ := keys.Get(k); !got.Revoked() {
		t.Errorf("key after the recovery: got %+v, want revoked", got)
	}
	if n := strings.Count(logs.String(), "event subscription recovered"); n != 1 {
		t.Errorf("got %d recovered lines, want 1:\n%s", n, logs.String())
	}
}

// TestProjector_Checkpoints: the projector remembers the newest checkpoint
// that matches the events it applied, and reports for good, loudly, one
// the ledger's key signed over another log.
func TestProjector_Checkpoints(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	logs := &logBuffer{}
	keys := projections.NewKeys()
	p, err := projections.New(l.store, slog.New(slog.NewTextHandler(logs, nil)), keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if _, ok := p.Checkpoint(); ok {
		t.Fatal("a checkpoint before any was written")
	}
	l.createKey(t, "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C")
	w, err := checkpoint.Start(ctx, l.store, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WaitFor(ctx, l.head(t)); err != nil {
		t.Fatal(err)
	}
	good, err := w.WriteNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, good.Sequence)
	if got, ok := p.Checkpoint(); !ok || got.Seq != good.Sequence || got.Checkpoint.Root != good.Data.(domain.LogCheckpoint).Root {
		t.Fatalf("Checkpoint: got %+v, %v, want the one at %d", got, ok, good.Sequence)
	}
	if err := p.CheckpointMismatch(); err != nil {
		t.Fatalf("CheckpointMismatch: %v", err)
	}

	l.createKey(t, "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C")
	bad := good
	bad.ID, bad.Version, bad.Prev, bad.Hash, bad.Sequence = "", good.Version+1, good.Hash, domain.Hash{}, 0
	bad.Data = domain.LogCheckpoint{Size: l.head(t), Root: domain.Hash{0: 0xba, 31: 0xd0}}
	badSeq := l.append(t, eventstore.Pending{Event: bad, ExpectedSeq: good.Sequence})[0]
	select {
	case <-p.CheckpointMismatched():
	case <-ctx.Done():
		t.Fatal("no mismatch reported")
	}
	if err := p.CheckpointMismatch(); !errors.Is(err, eventstore.ErrCheckpointMismatch) {
		t.Errorf("CheckpointMismatch: got %v, want ErrCheckpointMismatch", err)
	}
	waitFor(t, p, badSeq)
	if got, _ := p.Checkpoint(); got.Seq != good.Sequence {
		t.Errorf("Checkpoint after the mismatch: got %+v, want still the one at %d", got, good.Sequence)
	}
	if !strings.Contains(logs.String(), "not the log the ledger checkpointed") {
		t.Errorf("no loud log line: %s", logs.String())
	}
}
