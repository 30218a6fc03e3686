package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keyledger/keyledger/domain"
)

// Handler receives each stored event in stream order. e.Sequence is always
// set; err is non-nil for a message that is not to be acted on: one the
// ledger did not sign wraps ErrForged (e then names only the category and
// aggregate of its subject), an unknown type wraps
// domain.ErrUnknownEventType (e holds the envelope), anything else does not
// decode.
// Handlers run one at a time on the subscription's goroutine.
type Handler func(e domain.Event, err error)

// ErrCheckpointMismatch is reported (through onErr) when the log does not
// reproduce the root of its newest signed checkpoint: the subscription
// then verifies every message's signature instead. A subscription that
// checks checkpoints (WithCheckpointCheck) reports it too for each
// checkpoint the messages it delivered do not match.
var ErrCheckpointMismatch = errors.New("the log does not match its checkpoint")

// ErrCheckpointTooOld is reported by a subscription that checks
// checkpoints (WithCheckpointCheck) for a checkpoint whose size lies
// further back than the tree it keeps: it could not be checked.
var ErrCheckpointTooOld = errors.New("checkpoint too old to check")

// CheckpointCheck is the outcome of checking a signed checkpoint a
// subscription delivered against the messages it delivered before it.
type CheckpointCheck struct {
	// Seq is the stream sequence of the checkpoint's event.
	Seq        uint64
	Checkpoint domain.LogCheckpoint
	// Err is nil when the messages 1..Checkpoint.Size delivered give the
	// checkpoint's root. It wraps ErrCheckpointMismatch when they do not,
	// or when some of them were never delivered: what the subscriber
	// applied is not the log the ledger signed. It wraps
	// ErrCheckpointTooOld when the size lies further back than the
	// subscription's tree reaches.
	Err error
}

// SubscribeOption tunes Subscribe.
type SubscribeOption func(*subscribeOptions) error

type subscribeOptions struct {
	check  func(CheckpointCheck)
	window int
	reader *TreeReader  // WithTreeReader
	from   *MerkleState // WithTreeFrom
	// fromLeaves are the leaves after from (WithTreeFrom).
	fromLeaves []domain.Hash
}

// WithCheckpointCheck has the subscription keep the RFC 6962 Merkle tree
// of every message it delivers, in stream order (a compact range and the
// newest DefaultCheckpointWindow or more leaves), and check each
// checkpoint it delivers - signed by a key the log trusts at its position,
// as every delivered event - against that tree at the checkpoint's size.
// f hears each outcome before the handler sees the checkpoint's event;
// it runs on the subscription's goroutine. The subscription must start at
// the beginning of the log (from 0 or 1).
func WithCheckpointCheck(f func(CheckpointCheck)) SubscribeOption {
	return func(o *subscribeOptions) error {
		if f == nil {
			return errors.New("checkpoint check: no function given")
		}
		o.check = f
		return nil
	}
}

// Subscription is a running feed of events. Stop ends it.
type Subscription struct {
	cc   jetstream.ConsumeContext // a plain subscription
	cons jetstream.Consumer       // and its consumer

	// A subscription that first checks the log against its checkpoint.
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	inner  *Subscription
}

// Stop ends the subscription and waits until no handler is running.
func (s *Subscription) Stop() {
	if s.cc != nil {
		s.cc.Stop()
		<-s.cc.Closed()
		return
	}
	s.cancel()
	<-s.done
	s.mu.Lock()
	inner := s.inner
	s.mu.Unlock()
	if inner != nil {
		inner.Stop()
	}
}

// Check asks the server whether the subscription's consumer is in place:
// after trouble reported through onErr (a consumer lost with its server,
// or deleted), nil means the subscription has recovered and will deliver
// again. Errors: Unavailable.
func (s *Subscription) Check(ctx context.Context) error {
	if s.cons == nil {
		s.mu.Lock()
		inner := s.inner
		s.mu.Unlock()
		if inner == nil {
			return domain.Errorf(domain.Unavailable, "event subscription not started")
		}
		return inner.Check(ctx)
	}
	if _, err := s.cons.Info(ctx); err != nil {
		return domain.Wrap(domain.Unavailable, err, "event subscription unavailable")
	}
	return nil
}

// Subscribe delivers every stored event from stream sequence from (1 or 0:
// the beginning) on, then each new one as it is stored, in order, through
// an ordered consumer: only events JetStream accepted are seen, never a
// rejected publish. The consumer recovers from disconnects by itself,
// resuming after the last delivered sequence; onErr (optional) hears about
// such trouble.
//
// Every message is verified before the handler sees it. From the
// beginning of a log that has signed checkpoints, a fast path applies: the
// messages the newest checkpoint covers are first only hashed, and if they
// reproduce its Merkle root they are then delivered without checking each
// signature (the ledger checked them before signing the checkpoint, which
// names those it did not write). Otherwise every signature is checked.
// Errors: Invalid for options that do not fit, Unavailable.
func (s *Store) Subscribe(ctx context.Context, from uint64, h Handler, onErr func(error), opts ...SubscribeOption) (*Subscription, error) {
	o := subscribeOptions{window: DefaultCheckpointWindow}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, domain.Wrap(domain.Invalid, err, "subscribe: "+err.Error())
		}
	}
	deliver := func(_ RawMessage, e domain.Event, err error) { h(e, err) }
	if o.check != nil {
		tree := newLiveTree(o.window)
		switch {
		case o.from != nil && from != o.from.Size+uint64(len(o.fromLeaves))+1:
			return nil, domain.Errorf(domain.Invalid, "subscribe: a tree of %d messages and %d leaves goes on from %d, not %d",
				o.from.Size, len(o.fromLeaves), o.from.Size+uint64(len(o.fromLeaves))+1, from)
		case o.from != nil:
			tree.base, _ = o.from.rangeOf() // checked by WithTreeFrom
			for _, l := range o.fromLeaves {
				tree.recent = append(tree.recent, slices.Clone(l[:]))
			}
		case from > 1:
			return nil, domain.Errorf(domain.Invalid, "subscribe: checking checkpoints needs every message from the log's start, not from %d", from)
		}
		if o.reader != nil {
			o.reader.tree.Store(tree)
		}
		deliver = func(m RawMessage, e domain.Event, err error) {
			tree.observe(m.Seq, m.Leaf())
			if err == nil && e.Type == domain.TypeLogCheckpoint {
				if c, ok := e.Data.(domain.LogCheckpoint); ok {
					o.check(CheckpointCheck{Seq: m.Seq, Checkpoint: c, Err: tree.check(m.Seq, c)})
				}
			}
			h(e, err)
		}
	}
	verified := func(m RawMessage) {
		// Not ctx: it may be a start-up context, long gone while this runs.
		e, err := s.Decode(context.Background(), m)
		deliver(m, e, err)
	}
	if from > 1 || o.from != nil {
		return s.SubscribeRaw(ctx, from, verified, onErr)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 {
		return s.SubscribeRaw(ctx, from, verified, onErr)
	}
	last := cps[len(cps)-1].Data.(domain.LogCheckpoint)
	foreign := map[uint64]bool{}
	for _, c := range cps {
		for _, seq := range c.Data.(domain.LogCheckpoint).Foreign {
			foreign[seq] = true
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	sub := &Subscription{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sub.done)
		trusted := last.Size
		if err := s.matchCheckpoint(bg, last); err != nil {
			if bg.Err() != nil {
				return
			}
			trusted = 0
			if onErr != nil {
				onErr(fmt.Errorf("%w: %v; verifying every signature", ErrCheckpointMismatch, err))
			}
		}
		inner, err := s.SubscribeRaw(bg, from, func(m RawMessage) {
			switch {
			case m.Seq > trusted:
				verified(m)
			case foreign[m.Seq]:
				e := s.fromSubject(m.Subject)
				e.Sequence = m.Seq
				deliver(m, e, fmt.Errorf("%w: named by a checkpoint", ErrForged))
			default:
				e, err := s.decodeUnsigned(m)
				deliver(m, e, err)
			}
		}, onErr)
		if err != nil {
			if onErr != nil {
				onErr(err)
			}
			return
		}
		sub.mu.Lock()
		if bg.Err() != nil { // stopped meanwhile: nobody else will stop it
			sub.mu.Unlock()
			inner.Stop()
			return
		}
		sub.inner = inner
		sub.mu.Unlock()
	}()
	return sub, nil
}

// matchCheckpoint hashes messages 1..c.Size into a Merkle tree and checks
// it gives c.Root.
func (s *Store) matchCheckpoint(ctx context.Context, c domain.LogCheckpoint) error {
	tree := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := s.SubscribeRaw(ctx, 1, func(m RawMessage) {
		if tree.End() >= c.Size {
			return
		}
		if m.Seq != tree.End()+1 {
			select {
			case done <- fmt.Errorf("sequence %d missing", tree.End()+1):
			default:
			}
			return
		}
		leaf := m.Leaf()
		_ = tree.Append(leaf[:], nil)
		if tree.End() < c.Size && m.Pending == 0 {
			select {
			case done <- fmt.Errorf("the log ends at %d, before the checkpoint's size %d", m.Seq, c.Size):
			default:
			}
			return
		}
		if tree.End() == c.Size {
			root, err := tree.GetRootHash(nil)
			if err == nil && domain.Hash(root) != c.Root {
				err = fmt.Errorf("root at size %d differs", c.Size)
			}
			done <- err
		}
	}, nil)
	if err != nil {
		return err
	}
	defer sub.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decodeUnsigned decodes a message a verified checkpoint vouches for: its
// signature was checked when the checkpoint was signed; that it sits on its
// aggregate's subject is checked here.
func (s *Store) decodeUnsigned(m RawMessage) (domain.Event, error) {
	e, err := domain.DecodeEvent(m.Data)
	e.Sequence = m.Seq
	if err == nil && m.Subject != s.Subject(e.Category(), e.Aggregate) {
		f := s.fromSubject(m.Subject)
		f.Sequence = m.Seq
		return f, fmt.Errorf("%w: %s event of %s stored on %s", ErrForged, e.Type, e.Aggregate, m.Subject)
	}
	return e, err
}
