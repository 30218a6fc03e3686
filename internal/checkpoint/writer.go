package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// DefaultInterval is how often a Writer checkpoints a log that has grown.
const DefaultInterval = 10 * time.Second

// DefaultEvery is how many messages a log may grow by before a Writer
// checkpoints it, without waiting for its interval: a reader holds back
// the messages between two checkpoints until it has checked the second's
// root (see eventstore.WithCheckpointBuffer), so a busy log must not grow
// by more than that holds between two.
const DefaultEvery = 1 << 14

// Writer follows the log, folds each stored message into the Merkle tree
// and, every interval or every DefaultEvery messages, whichever comes
// first, appends a signed checkpoint of the tree if the log has grown. Messages after the last checkpoint are verified as they come,
// and those the ledger did not write are named in the next checkpoint;
// messages the last checkpoint covers are only hashed, and must reproduce
// its root. Several ledgers may run writers on one log: the per-subject
// expected sequence lets one checkpoint through per round.
//
// A Writer is safe for concurrent use; Close stops it.
type Writer struct {
	store    *eventstore.Store
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time

	closeOnce sync.Once
	mu        sync.Mutex
	tree      *Tree
	trustTo   uint64       // the last checkpoint at start: sizes up to it are only hashed
	trustRoot domain.Hash  // and must give this root
	last      domain.Event // the newest checkpoint seen
	lastSeq   uint64       // its stream sequence
	subjSeq   uint64       // the newest message on the checkpoint subject, signed or not
	foreign   []uint64     // foreign sequences after last's size
	content   uint64       // sequence of the newest message that is not a checkpoint
	broken    error        // why no further checkpoint can be written
	changed   chan struct{}
	grown     chan struct{} // a token once the log grew by DefaultEvery since the last checkpoint

	sub    *eventstore.Subscription
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start loads the newest checkpoint, follows the log from its start, and
// checkpoints every interval (<= 0: DefaultInterval). Errors: Unavailable.
func Start(ctx context.Context, store *eventstore.Store, logger *slog.Logger, interval time.Duration) (*Writer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	w := &Writer{store: store, logger: logger, interval: interval, now: time.Now, tree: NewTree(),
		changed: make(chan struct{}), grown: make(chan struct{}, 1)}
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	if len(cps) > 0 {
		w.last, w.lastSeq, w.subjSeq = cps[len(cps)-1], cps[len(cps)-1].Sequence, cps[len(cps)-1].Sequence
		c := w.last.Data.(domain.LogCheckpoint)
		w.trustTo, w.trustRoot = c.Size, c.Root
	}
	w.sub, err = store.SubscribeRaw(ctx, 1, w.observe, func(err error) {
		logger.Warn("checkpoint writer: log subscription trouble", "err", err)
	})
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Go(func() { w.run(bg) })
	return w, nil
}

// Close stops the writer. It may be called more than once, from any
// goroutine.
func (w *Writer) Close() {
	w.closeOnce.Do(w.close)
}

func (w *Writer) close() {
	w.cancel()
	w.wg.Wait()
	w.sub.Stop()
}

func (w *Writer) run(ctx context.Context) {
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	grown := w.grown
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-grown:
		}
		if _, err := w.WriteNow(ctx); err != nil && !errors.Is(err, ErrNothingNew) {
			w.logger.Warn("checkpoint not written", "err", err)
			grown = nil // retry on the interval only, not on every message
		} else {
			grown = w.grown
		}
	}
}

// observe folds one stored message into the tree.
func (w *Writer) observe(m eventstore.RawMessage) {
	w.mu.Lock()
	defer func() {
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}()
	if m.Seq <= w.tree.Size() {
		return // redelivered after a consumer reset
	}
	if w.broken != nil {
		return
	}
	if m.Seq != w.tree.Size()+1 {
		w.broken = fmt.Errorf("stream sequences %d to %d are missing from the log", w.tree.Size()+1, m.Seq-1)
		w.logger.Error("the log has a gap: no further checkpoints (run keyledger audit verify)", "err", w.broken)
		return
	}
	w.tree.Append(m.Leaf())
	if m.Subject == w.store.Subject(domain.CategoryLog, domain.CheckpointAggregate) {
		w.subjSeq = m.Seq
	}
	if m.Seq <= w.trustTo {
		if m.Seq == w.trustTo && w.tree.Root() != w.trustRoot {
			w.broken = fmt.Errorf("the log up to sequence %d does not match its checkpoint at %d", w.trustTo, w.lastSeq)
			w.logger.Error("the log was altered: no further checkpoints (run keyledger audit verify)", "err", w.broken)
		}
		return
	}
	e, err := w.store.Decode(context.Background(), m)
	switch {
	case errors.Is(err, eventstore.ErrForged):
		w.foreign = append(w.foreign, m.Seq)
		w.content = m.Seq
	case err == nil && e.Type == domain.TypeLogCheckpoint:
		c := e.Data.(domain.LogCheckpoint)
		if e.Version > w.last.Version {
			w.last, w.lastSeq = e, m.Seq
			w.foreign = slices.DeleteFunc(w.foreign, func(seq uint64) bool { return seq <= c.Size })
		}
	default:
		w.content = m.Seq
	}
	if w.content >= w.lastSize()+DefaultEvery {
		select {
		case w.grown <- struct{}{}:
		default: // one is pending already
		}
	}
}

// ErrNothingNew is returned by WriteNow when the log has not grown since
// the last checkpoint (other than by checkpoints).
var ErrNothingNew = errors.New("nothing new to checkpoint")

// WriteNow appends a checkpoint of the log as the writer has seen it, and
// returns it as stored once the writer has seen it. When another writer
// checkpointed first, it catches up and tries again (ErrNothingNew if that
// checkpoint covered everything). Errors: ErrNothingNew; Conflict after
// repeated races; Internal when the log has a gap or does not match an
// earlier checkpoint; Unavailable.
func (w *Writer) WriteNow(ctx context.Context) (domain.Event, error) {
	for attempt := 1; ; attempt++ {
		e, err := w.writeOnce(ctx)
		if domain.KindOf(err) != domain.Conflict || attempt == 3 {
			return e, err
		}
		// Something else is the subject's last message: another writer's
		// checkpoint (then there may be nothing new left) or a forged
		// message (to be named and written after). Catch up and retry.
		last, lerr := w.store.LastSequence(ctx, domain.CategoryLog, domain.CheckpointAggregate)
		if lerr != nil {
			return domain.Event{}, lerr
		}
		if werr := w.WaitFor(ctx, last); werr != nil {
			return domain.Event{}, err
		}
	}
}

func (w *Writer) writeOnce(ctx context.Context) (domain.Event, error) {
	w.mu.Lock()
	if w.broken != nil {
		w.mu.Unlock()
		return domain.Event{}, domain.Wrap(domain.Internal, w.broken, "log cannot be checkpointed")
	}
	if w.content <= w.lastSize() || w.tree.Size() <= w.trustTo {
		w.mu.Unlock()
		return domain.Event{}, ErrNothingNew
	}
	size := w.tree.Size()
	c := domain.LogCheckpoint{Size: size, Root: w.tree.Root(), Foreign: slices.Clone(w.foreign)}
	e := domain.Event{Type: domain.TypeLogCheckpoint, Schema: domain.CurrentSchema, Aggregate: domain.CheckpointAggregate,
		Version: w.last.Version + 1, Time: w.now().UTC(), Actor: "system", Prev: w.last.Hash, Data: c}
	expected := w.subjSeq
	w.mu.Unlock()
	seqs, err := w.store.Append(ctx, eventstore.Pending{Event: e, ExpectedSeq: expected})
	if err != nil {
		return domain.Event{}, err
	}
	e.Sequence = seqs[0]
	// The next checkpoint chains to this one: wait until it is seen stored
	// (which also gives its hash).
	if err := w.WaitFor(ctx, e.Sequence); err != nil {
		return e, domain.Wrap(domain.Unavailable, err, "checkpoint written but not yet seen")
	}
	w.logger.Debug("checkpoint written", "seq", e.Sequence, "size", size, "foreign", len(c.Foreign))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastSeq == e.Sequence {
		return w.last, nil // as stored: with its id and hash
	}
	return e, nil
}

// lastSize is the size of the newest checkpoint, 0 without one. Called
// with w.mu held.
func (w *Writer) lastSize() uint64 {
	if c, ok := w.last.Data.(domain.LogCheckpoint); ok {
		return c.Size
	}
	return 0
}

// WaitFor blocks until the writer has seen stream sequence seq. It
// returns at once with an error when the log cannot be followed (a gap, or
// a log that does not match its checkpoint).
func (w *Writer) WaitFor(ctx context.Context, seq uint64) error {
	for {
		w.mu.Lock()
		size, ch, broken := w.tree.Size(), w.changed, w.broken
		w.mu.Unlock()
		if size >= seq {
			return nil
		}
		if broken != nil {
			return broken
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
