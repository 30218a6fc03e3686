package snapshot

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/projections"
)

// Defaults of a Writer.
const (
	DefaultInterval = 10 * time.Minute
	DefaultKeep     = 2
)

// WriterConfig configures a Writer.
type WriterConfig struct {
	Log       *eventstore.Store
	Projector *projections.Projector // feeds Lookup (and Models)
	Lookup    *projections.Lookup
	// Models, if set, are serve's other read models fed by the same
	// projector: each time, a snapshot of KindLedger holding the lookup
	// and them is written too, which serve starts from.
	Models *projections.Models
	// Checkpoints, if set, is asked for a fresh checkpoint before each
	// snapshot, so that the snapshot is bound to one just behind it.
	Checkpoints *checkpoint.Writer
	Store       *Store
	Key         ed25519.PrivateKey // a ledger key the log trusts
	Interval    time.Duration      // 0: DefaultInterval
	Keep        int                // snapshots kept (0: DefaultKeep)
	Logger      *slog.Logger
}

// Writer writes a signed snapshot of the lookup (KindLookup) every
// interval when the log has grown, with one of the lookup and serve's
// other read models (KindLedger) when it has them, and deletes all but
// the newest few of each kind. Close stops it.
type Writer struct {
	cfg    WriterConfig
	mu     sync.Mutex // one snapshot at a time
	last   uint64     // position of the last snapshot written
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartWriter starts a Writer. Errors: a config without its parts.
func StartWriter(cfg WriterConfig) (*Writer, error) {
	if cfg.Log == nil || cfg.Projector == nil || cfg.Lookup == nil || cfg.Store == nil || len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("snapshot writer: need a log, a projector, a lookup, a bucket and a signing key")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{cfg: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Go(func() { w.run(ctx) })
	return w, nil
}

// Close stops the writer and waits for a snapshot being written.
func (w *Writer) Close() {
	w.cancel()
	w.wg.Wait()
}

func (w *Writer) run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wctx, cancel := context.WithTimeout(ctx, max(w.cfg.Interval, time.Minute))
		_, err := w.WriteNow(wctx)
		cancel()
		if err != nil && !errors.Is(err, ErrNothingNew) && ctx.Err() == nil {
			w.cfg.Logger.Warn("snapshot not written", "err", err)
		}
	}
}

// ErrNothingNew is returned by WriteNow when the log has not grown since
// the last snapshot.
var ErrNothingNew = errors.New("nothing new to snapshot")

// WriteNow writes a snapshot of the lookup as it is now (and one of the
// lookup and the models, when set), bound to the newest checkpoint
// (written first when a checkpoint writer is set), then deletes all but
// the newest Keep of each kind. It returns the lookup's snapshot.
// Errors: ErrNothingNew; Invalid when the log has no checkpoint yet or
// too many messages lie between it and the lookup's position;
// Unavailable.
func (w *Writer) WriteNow(ctx context.Context) (Info, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cfg := &w.cfg
	if cfg.Checkpoints != nil {
		if _, err := cfg.Checkpoints.WriteNow(ctx); err != nil && !errors.Is(err, checkpoint.ErrNothingNew) {
			return Info{}, fmt.Errorf("checkpoint before the snapshot: %w", err)
		}
	}
	cps, err := cfg.Log.Checkpoints(ctx)
	if err != nil {
		return Info{}, err
	}
	if len(cps) == 0 {
		return Info{}, domain.Errorf(domain.Invalid, "the log has no checkpoint to bind a snapshot to yet")
	}
	cp := Checkpoint{Seq: cps[len(cps)-1].Sequence}
	c := cps[len(cps)-1].Data.(domain.LogCheckpoint)
	cp.Size, cp.Root = c.Size, c.Root
	if err := cfg.Projector.WaitFor(ctx, cp.Seq); err != nil {
		return Info{}, err
	}
	info, err := cfg.Log.Info(ctx)
	if err != nil {
		return Info{}, err
	}
	root, _ := cfg.Log.TrustRoot()
	s := Snapshot{Stream: cfg.Log.StreamName(), Created: info.Created.UTC(), TrustRoot: root, Checkpoint: cp,
		TakenAt: time.Now().UTC()}
	frozeAt := time.Now()
	err = cfg.Projector.Freeze(func(applied uint64, tree *eventstore.TreeReader) error {
		if applied == w.last {
			return ErrNothingNew
		}
		if applied-cp.Size > MaxLeaves {
			return domain.Errorf(domain.Invalid, "%d messages between the checkpoint and the lookup's position, at most %d",
				applied-cp.Size, MaxLeaves)
		}
		var err error
		if s.Tree, err = tree.At(cp.Size); err != nil {
			return err
		}
		if s.Leaves, err = tree.Leaves(cp.Size, applied); err != nil {
			return err
		}
		s.Seq, s.Keys = applied, uint64(cfg.Lookup.Len())
		s.Lookup = cfg.Lookup.AppendSnapshot(make([]byte, 0, cfg.Lookup.Len()*(90)+1<<16))
		if cfg.Models != nil {
			s.Models = cfg.Models.AppendSnapshot(make([]byte, 0, cfg.Lookup.Len()*400+1<<16))
		}
		return nil
	})
	froze := time.Since(frozeAt)
	if err != nil {
		return Info{}, err
	}
	if cfg.Models != nil {
		// Serve's own first: a lookup snapshot is never newer than
		// serve's, so that both kinds stand at the same position.
		if _, err := w.put(ctx, KindLedger, s, froze); err != nil {
			return Info{}, err
		}
		s.Models = nil
	}
	out, err := w.put(ctx, KindLookup, s, froze)
	if err != nil {
		return Info{}, err
	}
	w.last = s.Seq
	return out, nil
}

// put signs and stores a snapshot of kind, then deletes all but the
// newest Keep of that kind.
func (w *Writer) put(ctx context.Context, kind Kind, s Snapshot, froze time.Duration) (Info, error) {
	cfg := &w.cfg
	data := Encode(s, cfg.Key)
	name, err := cfg.Store.Put(ctx, kind, s.Seq, data)
	if err != nil {
		return Info{}, err
	}
	cfg.Logger.Info("snapshot written", "kind", strings.TrimSuffix(string(kind), "-"), "seq", s.Seq, "keys", s.Keys,
		"bytes", len(data), "name", name, "froze", froze.Round(time.Millisecond))
	if n, err := cfg.Store.Prune(ctx, kind, cfg.Keep); err != nil {
		cfg.Logger.Warn("old snapshots not deleted", "kind", strings.TrimSuffix(string(kind), "-"), "err", err)
	} else if n > 0 {
		cfg.Logger.Debug("old snapshots deleted", "kind", strings.TrimSuffix(string(kind), "-"), "deleted", n)
	}
	return Info{Name: name, Seq: s.Seq, Size: uint64(len(data)), Froze: froze}, nil
}
