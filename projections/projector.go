// Package projections folds the event log into read models and keeps them
// current: the keys (validation lookup and per-user listings) and the users.
// A Projector feeds every read model from one ordered subscription and
// tracks the stream sequence applied, so callers can wait for their own
// writes.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// Model is a read model: it folds events of the categories it cares about
// and ignores the rest. Apply is called from one goroutine at a time, in
// stream order; a model guards its own state against concurrent readers.
type Model interface {
	Apply(e domain.Event) error
}

// Skipper is a Model that wants to hear of events of types this code does
// not know (written by a newer version): they still take a version and a
// sequence of their aggregate.
type Skipper interface {
	Skip(e domain.Event)
}

// Log is the part of the event store a Projector reads.
type Log interface {
	Head(ctx context.Context) (uint64, error)
	Subscribe(ctx context.Context, from uint64, h eventstore.Handler, onErr func(error), opts ...eventstore.SubscribeOption) (*eventstore.Subscription, error)
}

// Projector feeds read models from the log. It is safe for concurrent use.
type Projector struct {
	log    Log
	models []Model
	logger *slog.Logger

	mu        sync.Mutex
	applied   uint64        // stream sequence of the last event handled
	appliedAt time.Time     // when it was handled
	target    uint64        // head of the log at start: ready once applied
	changed   chan struct{} // closed and replaced once applied reaches wakeAt
	waiters   int           // WaitFor calls waiting on changed
	wakeAt    uint64        // the lowest sequence a waiter waits for
	started   chan struct{} // closed once Start has read the head
	ready     atomic.Bool   // applied >= target while subscribed: read on every validation
	sub       *eventstore.Subscription
	skips     []skip // the newest runs of sequences not applied, in order, at most maxSkips
	forgotten uint64 // the last sequence of the newest run dropped from skips
	troubled  int    // subscription troubles since the last recovery
	probing   bool   // a goroutine checks whether the subscription recovered
	stopped   chan struct{}
	stopOnce  sync.Once

	// applying is held while an event is applied and the position moved,
	// so that Freeze sees the models and the position agree.
	applying sync.Mutex
	tree     eventstore.TreeReader // the subscription's Merkle tree

	checkpoint eventstore.CheckpointCheck // the newest checkpoint that matched (Seq 0: none yet)
	mismatch   error                      // the first checkpoint that did not match
	mismatched chan struct{}              // closed once mismatch is set
}

// skip is a run of stream sequences the projector handled without applying
// them to every model, and why.
type skip struct {
	from, to uint64
	reason   string
}

// maxSkips bounds the runs of skipped sequences a Projector remembers for
// WaitApplied. A command asks right after its event is handled, so only a
// flood of skipped messages in between makes it forget; WaitApplied then
// reports the event as not applied rather than guess.
const maxSkips = 1024

// ErrSkipped is returned (wrapped, with the reason) by WaitApplied for an
// event the projector handled without applying it to every model: a
// message the ledger did not sign or that does not verify, one that does
// not decode or does not apply, one of an unknown type, or a sequence the
// log no longer holds.
var ErrSkipped = errors.New("skipped")

// New returns a Projector of models over log. logger may be nil (logs are
// then discarded). Errors: a nil log, no models or a nil one.
func New(log Log, logger *slog.Logger, models ...Model) (*Projector, error) {
	if log == nil || len(models) == 0 {
		return nil, errors.New("projections: need a log and at least one model")
	}
	for i, m := range models {
		if m == nil {
			return nil, fmt.Errorf("projections: model %d is nil", i)
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Projector{log: log, models: models, logger: logger, changed: make(chan struct{}),
		started: make(chan struct{}), stopped: make(chan struct{}), mismatched: make(chan struct{})}, nil
}

// Start reads the log's head (the point the projector must reach to be
// ready) and subscribes from the beginning. It returns once subscribed; the
// catch-up runs in the background. Errors: Unavailable.
func (p *Projector) Start(ctx context.Context) error {
	return p.start(ctx, 1, eventstore.WithCheckpointCheck(p.checked), eventstore.WithTreeReader(&p.tree))
}

// StartFrom is Start for models that already hold the log up to
// tree.Size+len(leaves) (loaded from a snapshot of it): the projector
// stands at that position and subscribes from the next message, verifying
// every one and checking each checkpoint against the tree (the log's
// Merkle tree of tree.Size messages followed by leaves, see
// eventstore.WithTreeFrom). Errors: Invalid for a tree that does not fit,
// Unavailable.
func (p *Projector) StartFrom(ctx context.Context, tree eventstore.MerkleState, leaves []domain.Hash) error {
	at := tree.Size + uint64(len(leaves))
	p.mu.Lock()
	p.applied = at
	p.mu.Unlock()
	return p.start(ctx, at+1, eventstore.WithCheckpointCheck(p.checked), eventstore.WithTreeReader(&p.tree),
		eventstore.WithTreeFrom(tree, leaves))
}

func (p *Projector) start(ctx context.Context, from uint64, opts ...eventstore.SubscribeOption) error {
	head, err := p.log.Head(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.target = head
	p.mu.Unlock()
	sub, err := p.log.Subscribe(ctx, from, p.handle, p.trouble, opts...)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.sub = sub
	p.ready.Store(p.applied >= p.target)
	p.mu.Unlock()
	close(p.started)
	return nil
}

// Stop ends the subscription; read models keep their last state.
func (p *Projector) Stop() {
	p.stopOnce.Do(func() { close(p.stopped) })
	p.mu.Lock()
	sub := p.sub
	p.sub = nil
	p.ready.Store(false)
	p.mu.Unlock()
	if sub != nil {
		sub.Stop()
	}
}

// recoveryProbe is how often a troubled subscription is checked.
const recoveryProbe = time.Second

// trouble logs a problem of the subscription. Once it has recovered (an
// event arrives, or its consumer is back in place while the log is quiet)
// handle or probe logs that, once.
func (p *Projector) trouble(err error) {
	if errors.Is(err, eventstore.ErrCheckpointMismatch) {
		// Not the feed's trouble: it goes on, checking every signature.
		p.logger.Warn("event subscription trouble", "err", err)
		return
	}
	p.mu.Lock()
	p.troubled++
	probe := !p.probing
	p.probing = true
	p.mu.Unlock()
	p.logger.Warn("event subscription trouble", "err", err)
	if probe {
		go p.probe()
	}
}

// probe checks the subscription every recoveryProbe until it has
// recovered or the projector stops.
func (p *Projector) probe() {
	t := time.NewTicker(recoveryProbe)
	defer t.Stop()
	for {
		select {
		case <-p.stopped:
			return
		case <-t.C:
		}
		p.mu.Lock()
		sub, troubled := p.sub, p.troubled
		p.mu.Unlock()
		if troubled == 0 { // an event arrived: handle logged the recovery
			break
		}
		if sub == nil {
			continue // Start has not stored it yet
		}
		ctx, cancel := context.WithTimeout(context.Background(), recoveryProbe)
		err := sub.Check(ctx)
		cancel()
		if err == nil {
			p.recovered("consumer in place")
			break
		}
	}
	p.mu.Lock()
	p.probing = false
	again := p.troubled > 0 // trouble came back while this one was finishing
	p.probing = again
	p.mu.Unlock()
	if again {
		go p.probe()
	}
}

// recovered logs the end of the subscription's trouble, if there was any.
func (p *Projector) recovered(how string) {
	p.mu.Lock()
	troubled := p.troubled
	p.troubled = 0
	applied := p.applied
	p.mu.Unlock()
	if troubled > 0 {
		p.logger.Info("event subscription recovered", "how", how, "troubles", troubled, "applied_seq", applied)
	}
}

// Freeze calls f with the position applied and the Merkle tree of the
// log the subscription keeps, while no event is being applied: what f
// reads of the models is the log up to that position, exactly (the tree
// may hold a message more: ask it for the size applied). Events wait
// meanwhile, so f should copy what it needs and return. Errors: f's.
func (p *Projector) Freeze(f func(applied uint64, tree *eventstore.TreeReader) error) error {
	p.applying.Lock()
	defer p.applying.Unlock()
	return f(p.Position(), &p.tree)
}

func (p *Projector) handle(e domain.Event, err error) {
	p.applying.Lock()
	defer p.applying.Unlock()
	p.recovered("event delivered")
	p.mu.Lock()
	done := e.Sequence <= p.applied
	p.mu.Unlock()
	if done {
		return
	}
	var skipped string // why e is not applied to every model
	switch {
	case errors.Is(err, domain.ErrUnknownEventType):
		p.logger.Debug("skipping event of unknown type", "seq", e.Sequence, "type", e.Type)
		for _, m := range p.models {
			if s, ok := m.(Skipper); ok && e.Aggregate != "" && e.Version > 0 {
				s.Skip(e)
			}
		}
		skipped = err.Error()
	case errors.Is(err, eventstore.ErrForged):
		p.logger.Warn("ignoring a message the ledger did not write", "seq", e.Sequence,
			"category", e.Category(), "aggregate", e.Aggregate, "err", err)
		skipped = err.Error()
	case err != nil:
		p.logger.Error("skipping undecodable event", "seq", e.Sequence, "err", err)
		skipped = "does not decode: " + err.Error()
	default:
		for _, m := range p.models {
			if err := m.Apply(e); err != nil {
				p.logger.Error("skipping event that does not apply", "seq", e.Sequence,
					"type", e.Type, "aggregate", e.Aggregate, "err", err)
				skipped = fmt.Sprintf("%s event does not apply: %v", e.Type, err)
			}
		}
	}
	p.mu.Lock()
	if e.Sequence > p.applied+1 {
		// Stored once (the acknowledgement came), gone before it was read.
		p.skip(p.applied+1, e.Sequence-1, "no longer in the log")
	}
	if skipped != "" {
		p.skip(e.Sequence, e.Sequence, skipped)
	}
	p.applied, p.appliedAt = e.Sequence, time.Now()
	if p.waiters > 0 && p.applied >= p.wakeAt {
		// Wake only when some waiter's sequence is reached, not on every
		// event: during a catch-up of a million events, WaitReady waits.
		close(p.changed)
		p.changed = make(chan struct{})
		p.wakeAt = math.MaxUint64 // the woken re-register their sequences
	}
	p.ready.Store(p.sub != nil && p.applied >= p.target)
	p.mu.Unlock()
}

// skip records that sequences from..to were not applied. p.mu is held.
func (p *Projector) skip(from, to uint64, reason string) {
	if len(p.skips) == maxSkips {
		p.forgotten = p.skips[0].to
		p.skips = append(p.skips[:0], p.skips[1:]...)
	}
	p.skips = append(p.skips, skip{from: from, to: to, reason: reason})
}

// checked notes the outcome of checking a signed checkpoint against the
// messages the projector was fed before it (see
// eventstore.WithCheckpointCheck); it runs before the checkpoint's event
// is handled.
func (p *Projector) checked(c eventstore.CheckpointCheck) {
	switch {
	case c.Err == nil:
		p.mu.Lock()
		if c.Checkpoint.Size >= p.checkpoint.Checkpoint.Size {
			p.checkpoint = c
		}
		p.mu.Unlock()
		p.logger.Debug("checkpoint verified against the events applied", "seq", c.Seq, "size", c.Checkpoint.Size)
	case errors.Is(c.Err, eventstore.ErrCheckpointTooOld):
		p.logger.Warn("a checkpoint could not be checked against the events applied: it lies too far back", "seq", c.Seq,
			"size", c.Checkpoint.Size, "err", c.Err)
	default:
		p.mu.Lock()
		first := p.mismatch == nil
		if first {
			p.mismatch = c.Err
			close(p.mismatched)
		}
		p.mu.Unlock()
		if first {
			p.logger.Error("the events applied are not the log the ledger checkpointed: the read models hold a log nobody signed",
				"seq", c.Seq, "size", c.Checkpoint.Size, "err", c.Err)
		}
	}
}

// Checkpoint returns the newest signed checkpoint the projector verified
// against the messages it was fed (eventstore.CheckpointCheck with a nil
// Err), and false before the first.
func (p *Projector) Checkpoint() (eventstore.CheckpointCheck, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkpoint, p.checkpoint.Seq != 0
}

// CheckpointMismatch returns why the messages the projector was fed do
// not match a checkpoint the ledger signed (an error wrapping
// eventstore.ErrCheckpointMismatch), or nil. Once set it stays: the read
// models were built from a log that differs from the ledger's.
func (p *Projector) CheckpointMismatch() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mismatch
}

// CheckpointMismatched returns a channel closed once CheckpointMismatch
// is set.
func (p *Projector) CheckpointMismatched() <-chan struct{} { return p.mismatched }

// Position returns the stream sequence of the last event applied.
func (p *Projector) Position() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// LastAppliedAt returns when the projector last handled an event (zero
// before the first): with no live head of the log to compare with, the
// age of this is what shows a stalled feed.
func (p *Projector) LastAppliedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.appliedAt
}

// Ready reports whether the projector has caught up with the log as it was
// at Start. It takes no lock.
func (p *Projector) Ready() bool { return p.ready.Load() }

// Status describes progress for /readyz.
type Status struct {
	Ready   bool   `json:"ready"`
	Applied uint64 `json:"applied_seq"`
	Target  uint64 `json:"start_seq"`
}

// Status returns the projector's progress.
func (p *Projector) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{Ready: p.sub != nil && p.applied >= p.target, Applied: p.applied, Target: p.target}
}

// WaitFor blocks until the event at stream sequence seq has been applied
// to every model, or ctx ends. Errors: Unavailable when ctx ends first.
func (p *Projector) WaitFor(ctx context.Context, seq uint64) error {
	for {
		p.mu.Lock()
		applied, ch := p.applied, p.changed
		if applied >= seq {
			p.mu.Unlock()
			return nil
		}
		if p.waiters == 0 || seq < p.wakeAt {
			p.wakeAt = seq
		}
		p.waiters++
		p.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = domain.Wrap(domain.Unavailable, fmt.Errorf("wait for seq %d at %d: %w", seq, applied, ctx.Err()),
				"read model is behind, try again")
		}
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// WaitApplied blocks like WaitFor until the projector has handled the
// event at stream sequence seq, then reports whether it applied it to
// every model: a writer that waits with it never takes an event the read
// models skipped for one in force. Errors: Unavailable when ctx ends
// first; an error wrapping ErrSkipped, with the reason, when seq was
// skipped (or may have been, among more skipped events than the projector
// remembers).
func (p *Projector) WaitApplied(ctx context.Context, seq uint64) error {
	if err := p.WaitFor(ctx, seq); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.skips) - 1; i >= 0 && p.skips[i].to >= seq; i-- {
		if s := p.skips[i]; s.from <= seq {
			return fmt.Errorf("%w: %s", ErrSkipped, s.reason)
		}
	}
	if seq <= p.forgotten {
		return fmt.Errorf("%w: cannot tell, more messages were skipped since than are remembered", ErrSkipped)
	}
	return nil
}

// WaitReady blocks until Start has run and the projector is Ready, or ctx
// ends. Errors: Unavailable.
func (p *Projector) WaitReady(ctx context.Context) error {
	select {
	case <-p.started:
	case <-ctx.Done():
		return domain.Wrap(domain.Unavailable, ctx.Err(), "read model not started")
	}
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	return p.WaitFor(ctx, target)
}
