package eventstore

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keyledger/keyledger/domain"
)

// DefaultCheckpointWindow is how many of the newest leaves a subscription
// that checks checkpoints (WithCheckpointCheck) keeps apart from its
// compact range, at the least: a checkpoint of size s is checkable while
// its event arrives within that many messages after s. A checkpoint event
// is appended right after the ledger reads the tree's size, so only the
// messages stored during that one append come in between; 32768 leaves
// leave room for any burst the ledger can write in that time, and cost
// at most about 4 MiB (up to twice that many leaves, 32 bytes each and a
// slice header).
const DefaultCheckpointWindow = 1 << 15

// treeFactory builds the live tree's ranges with hashChildren.
var treeFactory = &compact.RangeFactory{Hash: hashChildren}

// hashChildren is rfc6962.DefaultHasher.HashChildren, SHA-256(0x01 || l
// || r), with one allocation instead of three: it runs about once per
// message a checking subscription delivers.
func hashChildren(l, r []byte) []byte {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l)
	copy(buf[1+sha256.Size:], r)
	sum := sha256.Sum256(buf[:])
	return sum[:]
}

// liveTree is the RFC 6962 Merkle tree of the messages a subscription
// delivered, in stream order, that gives its root at any size of its
// recent past: a compact range of leaves 1..base.End() (O(log n) hashes)
// and the newest leaves after it, one by one (between window and 2*window
// of them). A root at a recent size costs hashing the leaves between the
// base and that size once; the base then moves there, so over a run every
// leaf is merged about once, as in a plain compact range.
//
// It is not safe for concurrent use: a subscription's handler calls run
// one at a time.
type liveTree struct {
	// mu guards the tree against a TreeReader reading it from another
	// goroutine; uncontended, it costs little beside the hash per leaf.
	mu     sync.Mutex
	base   *compact.Range
	recent [][]byte // leaves base.End()+1 .. base.End()+len(recent)
	window int
	// missing is the first sequence the subscription skipped (0: none):
	// the tree ends before it, and no checkpoint covering it can match.
	missing uint64
}

func newLiveTree(window int) *liveTree {
	return &liveTree{base: treeFactory.NewEmptyRange(0), window: window}
}

// size is the number of leaves.
func (t *liveTree) size() uint64 { return t.base.End() + uint64(len(t.recent)) }

// observe adds the message at stream sequence seq with its leaf hash, if it
// is the next one; a redelivered one is ignored, and one after a gap stops
// the tree for good.
func (t *liveTree) observe(seq uint64, leaf domain.Hash) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.missing != 0 || seq <= t.size():
		return
	case seq != t.size()+1:
		t.missing = t.size() + 1
		return
	}
	t.recent = append(t.recent, leaf[:])
	if len(t.recent) >= 2*t.window {
		// Merge the oldest into the base; keep the newest window.
		n := len(t.recent) - t.window
		for _, l := range t.recent[:n] {
			_ = t.base.Append(l, nil) // fails only for a corrupt range, which this never builds
		}
		t.drop(n)
	}
}

// check compares c, the checkpoint whose event is at stream sequence seq,
// with the tree: nil when the messages 1..c.Size delivered give its root;
// an error wrapping ErrCheckpointMismatch when they do not, when some of
// them were not delivered, or when c claims a size at or after its own
// position (the ledger checkpoints only what is stored before it); one
// wrapping ErrCheckpointTooOld when the tree no longer holds that size.
// A checked size becomes the tree's base.
func (t *liveTree) check(seq uint64, c domain.LogCheckpoint) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case c.Size >= seq:
		return fmt.Errorf("%w: the checkpoint at sequence %d claims size %d, beyond its own position", ErrCheckpointMismatch, seq, c.Size)
	case t.missing != 0 && c.Size >= t.missing:
		return fmt.Errorf("%w: message %d, which the checkpoint at sequence %d covers, was not delivered", ErrCheckpointMismatch, t.missing, seq)
	case c.Size > t.size():
		// Delivered in order with no gap, the tree holds every message
		// before the checkpoint's: only a redelivery could get here.
		return fmt.Errorf("%w: size %d, but only %d messages were delivered", ErrCheckpointTooOld, c.Size, t.size())
	case c.Size < t.base.End():
		return fmt.Errorf("%w: size %d is %d messages before the checkpoint at sequence %d; the tree keeps the newest %d",
			ErrCheckpointTooOld, c.Size, seq-1-c.Size, seq, t.window)
	}
	r := t.base
	if n := int(c.Size - t.base.End()); n > 0 {
		var err error
		if r, err = treeFactory.NewRange(0, t.base.End(), slices.Clone(t.base.Hashes())); err != nil {
			return err
		}
		for _, l := range t.recent[:n] {
			_ = r.Append(l, nil)
		}
	}
	root := domain.Hash(sha256.Sum256(nil))
	if c.Size > 0 {
		h, err := r.GetRootHash(nil)
		if err != nil {
			return err
		}
		root = domain.Hash(h)
	}
	if root != c.Root {
		return fmt.Errorf("%w: the %d messages delivered before the checkpoint at sequence %d have another root than it signs",
			ErrCheckpointMismatch, c.Size, seq)
	}
	if r != t.base {
		t.drop(int(c.Size - t.base.End()))
		t.base = r
	}
	return nil
}

// drop removes the oldest n of the recent leaves (now in the base).
func (t *liveTree) drop(n int) {
	old := len(t.recent)
	t.recent = append(t.recent[:0], t.recent[n:]...)
	clear(t.recent[len(t.recent):old]) // let go of the moved-out leaves
}
