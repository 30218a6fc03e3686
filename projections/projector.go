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
	Subscribe(ctx context.Context, from uint64, h eventstore.Handler, onErr func(error)) (*eventstore.Subscription, error)
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
}

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
		started: make(chan struct{})}, nil
}

// Start reads the log's head (the point the projector must reach to be
// ready) and subscribes from the beginning. It returns once subscribed; the
// catch-up runs in the background. Errors: Unavailable.
func (p *Projector) Start(ctx context.Context) error {
	head, err := p.log.Head(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.target = head
	p.mu.Unlock()
	sub, err := p.log.Subscribe(ctx, 1, p.handle, func(err error) {
		p.logger.Warn("event subscription trouble", "err", err)
	})
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
	p.mu.Lock()
	sub := p.sub
	p.sub = nil
	p.ready.Store(false)
	p.mu.Unlock()
	if sub != nil {
		sub.Stop()
	}
}

func (p *Projector) handle(e domain.Event, err error) {
	p.mu.Lock()
	done := e.Sequence <= p.applied
	p.mu.Unlock()
	if done {
		return
	}
	switch {
	case errors.Is(err, domain.ErrUnknownEventType):
		p.logger.Debug("skipping event of unknown type", "seq", e.Sequence, "type", e.Type)
		for _, m := range p.models {
			if s, ok := m.(Skipper); ok && e.Aggregate != "" && e.Version > 0 {
				s.Skip(e)
			}
		}
	case errors.Is(err, eventstore.ErrForged):
		p.logger.Warn("ignoring a message the ledger did not write", "seq", e.Sequence,
			"category", e.Category(), "aggregate", e.Aggregate, "err", err)
	case err != nil:
		p.logger.Error("skipping undecodable event", "seq", e.Sequence, "err", err)
	default:
		for _, m := range p.models {
			if err := m.Apply(e); err != nil {
				p.logger.Error("skipping event that does not apply", "seq", e.Sequence,
					"type", e.Type, "aggregate", e.Aggregate, "err", err)
			}
		}
	}
	p.mu.Lock()
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
