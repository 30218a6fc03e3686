// Package checkpoint keeps the event log tamper-evident: it folds every
// stored message into an RFC 6962 Merkle tree (as Certificate Transparency
// does) and has the ledger append signed checkpoints that commit to the
// tree's root, naming any message in the range the ledger did not write.
package checkpoint

import (
	"crypto/sha256"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keyledger/keyledger/domain"
)

// Tree is the Merkle tree of the log's leaves, kept as a compact range:
// O(log n) memory whatever the size. The zero Tree is not usable; call
// NewTree.
type Tree struct {
	r *compact.Range
}

var factory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{r: factory.NewEmptyRange(0)} }

// Append adds the next leaf hash (see eventstore.LeafHash).
func (t *Tree) Append(leaf domain.Hash) {
	// Append fails only for a hash of the wrong size, which a Hash is not.
	_ = t.r.Append(append([]byte(nil), leaf[:]...), nil)
}

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return t.r.End() }

// Root is the RFC 6962 tree hash; the empty tree's is SHA-256("").
func (t *Tree) Root() domain.Hash {
	var out domain.Hash
	if t.r.End() == 0 {
		return sha256.Sum256(nil)
	}
	root, err := t.r.GetRootHash(nil)
	if err == nil {
		copy(out[:], root)
	}
	return out
}
