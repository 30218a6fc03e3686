package eventstore

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/transparency-dev/merkle/compact"

	"github.com/keyledger/keyledger/domain"
)

// MerkleState is the RFC 6962 Merkle tree of the log's first Size
// messages, as a compact range: the hashes of its perfect subtrees, left
// to right (at most 64). It is what a reader needs to go on checking
// checkpoints from message Size+1 without the messages before it.
type MerkleState struct {
	Size   uint64
	Hashes []domain.Hash
}

// Root returns the tree's root (SHA-256 of nothing for the empty tree).
// Errors: a state whose hashes do not fit its size.
func (m MerkleState) Root() (domain.Hash, error) {
	r, err := m.rangeOf()
	if err != nil {
		return domain.Hash{}, err
	}
	if m.Size == 0 {
		return sha256.Sum256(nil), nil
	}
	h, err := r.GetRootHash(nil)
	if err != nil {
		return domain.Hash{}, err
	}
	return domain.Hash(h), nil
}

func (m MerkleState) rangeOf() (*compact.Range, error) {
	hashes := make([][]byte, len(m.Hashes))
	for i := range m.Hashes {
		hashes[i] = m.Hashes[i][:]
	}
	r, err := treeFactory.NewRange(0, m.Size, hashes)
	if err != nil {
		return nil, fmt.Errorf("merkle state of size %d: %w", m.Size, err)
	}
	return r, nil
}

// TreeReader reads the Merkle tree a checking subscription keeps (see
// WithTreeReader). It is safe for concurrent use with the subscription.
type TreeReader struct {
	tree atomic.Pointer[liveTree]
}

// ErrTreeUnavailable is returned by TreeReader.At for a size the tree
// cannot give: before its subscription started, too far back, or past
// what it was delivered.
var ErrTreeUnavailable = errors.New("merkle tree unavailable at that size")

// At returns the tree of the first size messages delivered.
func (r *TreeReader) At(size uint64) (MerkleState, error) {
	var t *liveTree
	if r != nil {
		t = r.tree.Load()
	}
	if t == nil {
		return MerkleState{}, fmt.Errorf("%w: no subscription", ErrTreeUnavailable)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.missing != 0 && size >= t.missing {
		return MerkleState{}, fmt.Errorf("%w: message %d was not delivered", ErrTreeUnavailable, t.missing)
	}
	if size < t.base.End() || size > t.size() {
		return MerkleState{}, fmt.Errorf("%w: size %d, the tree holds %d..%d", ErrTreeUnavailable, size, t.base.End(), t.size())
	}
	rg, err := treeFactory.NewRange(0, t.base.End(), slices.Clone(t.base.Hashes()))
	if err != nil {
		return MerkleState{}, err
	}
	for _, l := range t.recent[:size-t.base.End()] {
		_ = rg.Append(l, nil)
	}
	return stateOf(rg), nil
}

// WithTreeReader has a checking subscription (WithCheckpointCheck) hand
// its Merkle tree to r, so that a snapshot taken of what it delivered can
// carry the tree at the snapshot's position.
func WithTreeReader(r *TreeReader) SubscribeOption {
	return func(o *subscribeOptions) error {
		if r == nil {
			return errors.New("tree reader: none given")
		}
		o.reader = r
		return nil
	}
}

// WithTreeFrom starts a checking subscription (WithCheckpointCheck) from
// a snapshot of the log: its tree starts as m, the tree of the first
// m.Size messages, followed by leaves, the leaf hashes of the messages
// after them the snapshot holds; the subscription must start at the
// message after those. Every message after it is verified (no checkpoint
// fast path), and each checkpoint it delivers of a size from m.Size on is
// checked against the tree: a snapshot whose tree or leaves are not the
// log's is found out by the next one.
func WithTreeFrom(m MerkleState, leaves []domain.Hash) SubscribeOption {
	return func(o *subscribeOptions) error {
		if _, err := m.rangeOf(); err != nil {
			return err
		}
		o.from, o.fromLeaves = &m, leaves
		return nil
	}
}

// VerifyAt checks sig, an Ed25519 signature over msg by the ledger key
// with id (see KeyID), against the keys the log's trust events trust at
// stream sequence seq - never against anything the signed thing says of
// itself. Errors: one wrapping ErrForged for a key not trusted at seq, a
// sequence beyond the log's end, or a bad signature; Unavailable when the
// trust events cannot be read.
func (s *Store) VerifyAt(ctx context.Context, seq uint64, id string, msg, sig []byte) error {
	v := &s.trust
	v.mu.RLock()
	covered := v.covered
	v.mu.RUnlock()
	if seq > covered {
		// Up to the log's head, never to seq: the view would take a
		// made-up sequence beyond the log as covered, and never fold the
		// trust events stored up to it.
		if err := s.refreshTrust(ctx, 0); err != nil {
			return domain.Wrap(domain.Unavailable, fmt.Errorf("%w: %v", ErrTrustUnavailable, err), "event log unavailable")
		}
	}
	v.mu.RLock()
	covered = v.covered
	key, ok := v.keyAt(id, seq)
	v.mu.RUnlock()
	if seq > covered {
		return fmt.Errorf("%w: sequence %d is beyond the log's end %d", ErrForged, seq, covered)
	}
	if !ok {
		return fmt.Errorf("%w: signer %s is not trusted at sequence %d", ErrForged, id, seq)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(key, msg, sig) {
		return fmt.Errorf("%w: bad signature by %s", ErrForged, id)
	}
	return nil
}

// Extend returns the tree with leaves appended after its own.
// Errors: a state whose hashes do not fit its size.
func (m MerkleState) Extend(leaves []domain.Hash) (MerkleState, error) {
	r, err := m.rangeOf()
	if err != nil {
		return MerkleState{}, err
	}
	for _, l := range leaves {
		_ = r.Append(slices.Clone(l[:]), nil)
	}
	return stateOf(r), nil
}

// stateOf is the MerkleState of a compact range from 0.
func stateOf(r *compact.Range) MerkleState {
	out := MerkleState{Size: r.End(), Hashes: make([]domain.Hash, len(r.Hashes()))}
	for i, h := range r.Hashes() {
		copy(out.Hashes[i][:], h)
	}
	return out
}

// Leaves returns the leaf hashes of messages from+1 .. to the tree holds
// one by one (recent ones), to give a snapshot the messages between its
// checkpoint and its position. Errors: wrapping ErrTreeUnavailable.
func (r *TreeReader) Leaves(from, to uint64) ([]domain.Hash, error) {
	var t *liveTree
	if r != nil {
		t = r.tree.Load()
	}
	if t == nil {
		return nil, fmt.Errorf("%w: no subscription", ErrTreeUnavailable)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if from > to || from < t.base.End() || to > t.size() || (t.missing != 0 && to >= t.missing) {
		return nil, fmt.Errorf("%w: leaves %d..%d, the tree holds %d..%d one by one", ErrTreeUnavailable, from+1, to, t.base.End()+1, t.size())
	}
	out := make([]domain.Hash, 0, to-from)
	for _, l := range t.recent[from-t.base.End() : to-t.base.End()] {
		out = append(out, domain.Hash(l))
	}
	return out, nil
}
