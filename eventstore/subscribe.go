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
// Handlers run one at a time, in stream order, on the subscription's
// goroutine (or, on the checkpoint fast path, a goroutine of its own).
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
	check       func(CheckpointCheck)
	window      int
	buffer      int // WithCheckpointBuffer
	bufferBytes int
	reader      *TreeReader  // WithTreeReader
	from        *MerkleState // WithTreeFrom
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
// beginning of a log that has signed checkpoints, a fast path applies, in
// one pass over the log: the messages up to the next checkpoint's size are
// hashed and held back until they reproduce its Merkle root, and then
// delivered without checking each signature (the ledger checked them
// before signing the checkpoint, which names those it did not write). A
// range that does not reproduce its root (reported through onErr as
// ErrCheckpointMismatch), one longer than the subscription may hold (see
// WithCheckpointBuffer), and everything after the newest checkpoint have
// every signature checked instead.
// Errors: Invalid for options that do not fit, Unavailable.
func (s *Store) Subscribe(ctx context.Context, from uint64, h Handler, onErr func(error), opts ...SubscribeOption) (*Subscription, error) {
	o := subscribeOptions{window: DefaultCheckpointWindow, buffer: DefaultCheckpointBuffer, bufferBytes: DefaultCheckpointBufferBytes}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, domain.Wrap(domain.Invalid, err, "subscribe: "+err.Error())
		}
	}
	deliver := func(_ RawMessage, _ *domain.Hash, e domain.Event, err error) { h(e, err) }
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
		deliver = func(m RawMessage, leaf *domain.Hash, e domain.Event, err error) {
			if leaf == nil {
				l := m.Leaf()
				leaf = &l
			}
			tree.observe(m.Seq, *leaf)
			if err == nil && e.Type == domain.TypeLogCheckpoint {
				if c, ok := e.Data.(domain.LogCheckpoint); ok {
					o.check(CheckpointCheck{Seq: m.Seq, Checkpoint: c, Err: tree.check(m.Seq, c)})
				}
			}
			h(e, err)
		}
	}
	verified := func(m RawMessage, leaf *domain.Hash) {
		// Not ctx: it may be a start-up context, long gone while this runs.
		e, err := s.Decode(context.Background(), m)
		deliver(m, leaf, e, err)
	}
	if from > 1 || o.from != nil {
		return s.SubscribeRaw(ctx, from, func(m RawMessage) { verified(m, nil) }, onErr)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 {
		return s.SubscribeRaw(ctx, from, func(m RawMessage) { verified(m, nil) }, onErr)
	}
	f := &fastPath{s: s, tree: treeFactory.NewEmptyRange(0), foreign: map[uint64]bool{},
		maxCount: uint64(o.buffer), maxBytes: o.bufferBytes, verified: verified, deliver: deliver, onErr: onErr}
	for _, c := range cps {
		c := c.Data.(domain.LogCheckpoint)
		if n := len(f.cps); c.Size > 0 && (n == 0 || c.Size > f.cps[n-1].Size) {
			f.cps = append(f.cps, c)
		}
		for _, seq := range c.Foreign {
			f.foreign[seq] = true
		}
	}
	f.startRange()
	// Ranges that match are decoded and delivered on a goroutine of their
	// own, while the next range is read: reading and applying overlap.
	bg, cancel := context.WithCancel(context.Background())
	f.quit, f.batches = bg.Done(), make(chan []heldMessage)
	sub := &Subscription{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sub.done)
		f.deliverBatches()
	}()
	inner, err := s.SubscribeRaw(ctx, from, f.handle, onErr)
	if err != nil {
		cancel()
		<-sub.done
		return nil, err
	}
	sub.mu.Lock()
	sub.inner = inner
	sub.mu.Unlock()
	return sub, nil
}

// Defaults of the checkpoint fast path's buffer (WithCheckpointBuffer).
// The ledger checkpoints every checkpoint.DefaultEvery messages or so,
// well inside them: a range holds about 20 MiB of messages.
const (
	DefaultCheckpointBuffer      = 1 << 16
	DefaultCheckpointBufferBytes = 64 << 20
)

// WithCheckpointBuffer bounds what the checkpoint fast path holds back
// before a checkpoint's root is reproduced: at most messages messages and
// about bytes bytes of them (0: the defaults). A range between two
// checkpoints longer than messages has each of its messages' signatures
// checked as it comes, and so has the rest of a range once bytes is
// exceeded.
func WithCheckpointBuffer(messages, bytes int) SubscribeOption {
	return func(o *subscribeOptions) error {
		if messages < 0 || bytes < 0 {
			return fmt.Errorf("checkpoint buffer %d messages, %d bytes: must not be negative", messages, bytes)
		}
		if messages > 0 {
			o.buffer = messages
		}
		if bytes > 0 {
			o.bufferBytes = bytes
		}
		return nil
	}
}

// fastPath reads a checkpointed log in one pass: it folds every message
// into the log's Merkle tree and holds back the messages of the range up
// to the next checkpoint's size until the tree reproduces that
// checkpoint's root. Only then are they decoded and delivered, without
// their signatures checked; a range that does not match, or is too long to
// hold, has every signature checked. Nothing is delivered before it is
// verified one way or the other. Its handle runs on the subscription's
// goroutine, one message at a time; a matched range is handed to
// deliverBatches, and everything else is delivered by handle itself once
// the ranges handed on are delivered, so the handler sees the log in
// order, one message at a time.
type fastPath struct {
	s         *Store
	cps       []domain.LogCheckpoint // the checkpoints known at the start, sizes rising
	next      int                    // index in cps of the range being read
	foreign   map[uint64]bool        // messages the checkpoints name as not the ledger's
	tree      *compact.Range         // leaves 1..tree.End(): every message seen
	held      []heldMessage          // the range's messages so far, waiting for its root
	bytes     int                    // about how many bytes held holds
	checkEach bool                   // the range is verified message by message
	broken    bool                   // the tree lost a message: verify everything
	maxCount  uint64
	maxBytes  int
	verified  func(RawMessage, *domain.Hash)
	deliver   func(RawMessage, *domain.Hash, domain.Event, error)
	onErr     func(error)
	batches   chan []heldMessage // matched ranges, to deliverBatches
	inflight  sync.WaitGroup     // ranges handed on and not yet delivered
	quit      <-chan struct{}    // closed when the subscription stops
}

// heldMessage is a message held back until its range's root is checked.
type heldMessage struct {
	m    RawMessage
	leaf domain.Hash
}

// startRange decides how the range up to cps[next] is read: held back, or
// message by message when it is longer than the buffer.
func (f *fastPath) startRange() {
	f.checkEach = f.next < len(f.cps) && f.cps[f.next].Size-f.tree.End() > f.maxCount
}

func (f *fastPath) handle(m RawMessage) {
	if m.Seq <= f.tree.End() {
		return // redelivered after a consumer reset
	}
	if f.broken || f.next >= len(f.cps) {
		if f.caughtUp() {
			f.verified(m, nil)
		}
		return
	}
	if m.Seq != f.tree.End()+1 {
		// Missing messages: no checkpoint from here on can be reproduced.
		f.fail(fmt.Errorf("sequence %d missing", f.tree.End()+1))
		f.broken = true
		f.release(false)
		if f.caughtUp() {
			f.verified(m, nil)
		}
		return
	}
	leaf := m.Leaf()
	_ = f.tree.Append(leaf[:], nil) // fails only for a corrupt range, which this never builds
	if f.checkEach {
		if f.caughtUp() {
			f.verified(m, &leaf)
		}
	} else {
		f.held = append(f.held, heldMessage{m: m, leaf: leaf})
		f.bytes += len(m.Subject) + len(m.Data) + 512 // the header map and the rest, roughly
		if f.bytes > f.maxBytes {
			f.release(false) // too much to hold: check their signatures, and the rest's
			f.checkEach = true
		}
	}
	if c := f.cps[f.next]; f.tree.End() == c.Size {
		root, err := f.tree.GetRootHash(nil)
		match := err == nil && domain.Hash(root) == c.Root
		if !match {
			f.fail(fmt.Errorf("root at size %d differs", c.Size))
		}
		f.release(match)
		f.next++
		f.startRange()
		// Every later root covers this one's leaves: none can match now.
		f.broken = !match
		return
	}
	if m.Pending == 0 && !f.checkEach {
		// The log ends before the checkpoint's size: an honest log holds
		// the checkpoint, after that size.
		f.fail(fmt.Errorf("the log ends at %d, before the checkpoint's size %d", m.Seq, f.cps[f.next].Size))
		f.release(false)
		f.broken = true
	}
}

// release delivers the held messages: as vouched for by the checkpoint
// when matched (handed to deliverBatches), else each verified by its
// signature, here.
func (f *fastPath) release(matched bool) {
	if len(f.held) == 0 {
		return
	}
	if matched {
		f.inflight.Add(1)
		select {
		case f.batches <- f.held:
		case <-f.quit:
			f.inflight.Done()
		}
		f.held, f.bytes = make([]heldMessage, 0, cap(f.held)), 0
		return
	}
	deliver := f.caughtUp()
	for i := range f.held {
		if deliver {
			f.verified(f.held[i].m, &f.held[i].leaf)
		}
		f.held[i] = heldMessage{} // let go of the message
	}
	f.held, f.bytes = f.held[:0], 0
}

// caughtUp waits until the ranges handed to deliverBatches are delivered,
// and reports whether the subscription still runs: once it stops, a
// range may be left undelivered, and nothing after it may be delivered.
func (f *fastPath) caughtUp() bool {
	f.inflight.Wait()
	select {
	case <-f.quit:
		return false
	default:
		return true
	}
}

// deliverBatches delivers the matched ranges handed to it, in order, until
// the subscription stops.
func (f *fastPath) deliverBatches() {
	for {
		select {
		case <-f.quit:
			return
		case batch := <-f.batches:
			f.deliverMatched(batch)
			f.inflight.Done()
		}
	}
}

// deliverMatched decodes and delivers the messages of a range that
// reproduced its checkpoint's root, without checking their signatures.
func (f *fastPath) deliverMatched(batch []heldMessage) {
	for i := range batch {
		select {
		case <-f.quit:
			return
		default:
		}
		hm := &batch[i]
		if f.foreign[hm.m.Seq] {
			e := f.s.fromSubject(hm.m.Subject)
			e.Sequence = hm.m.Seq
			f.deliver(hm.m, &hm.leaf, e, fmt.Errorf("%w: named by a checkpoint", ErrForged))
			continue
		}
		e, err := f.s.decodeUnsigned(hm.m)
		f.deliver(hm.m, &hm.leaf, e, err)
	}
}

// fail reports that the log does not reproduce a checkpoint.
func (f *fastPath) fail(err error) {
	if f.onErr != nil {
		f.onErr(fmt.Errorf("%w: %v; verifying its messages' signatures", ErrCheckpointMismatch, err))
	}
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
