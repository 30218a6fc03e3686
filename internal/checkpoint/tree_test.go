package checkpoint_test

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
)

// node is RFC 6962's interior node hash: SHA-256(0x01 || left || right).
func node(l, r domain.Hash) domain.Hash {
	b := append([]byte{1}, l[:]...)
	return sha256.Sum256(append(b, r[:]...))
}

// leaf is RFC 6962's leaf hash of a log entry: SHA-256(0x00 || entry).
func leaf(entry string) domain.Hash {
	return sha256.Sum256(append([]byte{0}, entry...))
}

// mth is RFC 6962's Merkle Tree Hash, section 2.1, straight from its
// recursive definition: split at the largest power of two below n.
func mth(leaves []domain.Hash) domain.Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return node(mth(leaves[:k]), mth(leaves[k:]))
}

func TestTree_KnownAnswers(t *testing.T) {
	t.Parallel()
	d0, d1, d2 := leaf("zero"), leaf("one"), leaf("two")
	tests := []struct {
		name   string
		leaves []domain.Hash
		want   domain.Hash
	}{
		{"Empty", nil, sha256.Sum256([]byte(""))},
		{"OneLeaf", []domain.Hash{d0}, d0},
		{"TwoLeaves", []domain.Hash{d0, d1}, node(d0, d1)},
		{"ThreeLeaves", []domain.Hash{d0, d1, d2}, node(node(d0, d1), d2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := checkpoint.NewTree()
			for _, l := range tt.leaves {
				tree.Append(l)
			}
			if got := tree.Size(); got != uint64(len(tt.leaves)) {
				t.Errorf("Size() = %d, want %d", got, len(tt.leaves))
			}
			if got := tree.Root(); got != tt.want {
				t.Errorf("Root() = %x, want %x", got, tt.want)
			}
		})
	}
}

// TestTree_MatchesRFC6962 checks the incremental tree against the
// recursive definition at every size, including the uneven ones where a
// compact range has several peaks.
func TestTree_MatchesRFC6962(t *testing.T) {
	t.Parallel()
	tree := checkpoint.NewTree()
	var leaves []domain.Hash
	for n := 0; n <= 70; n++ {
		if got, want := tree.Root(), mth(leaves); got != want {
			t.Fatalf("size %d: Root() = %x, want %x", n, got, want)
		}
		l := eventstore.LeafHash(fmt.Sprintf("keyledger.key.k%d", n), []byte(fmt.Sprintf(`{"n":%d}`, n)))
		leaves = append(leaves, l)
		tree.Append(l)
	}
}

func TestLeafHash(t *testing.T) {
	t.Parallel()
	got := eventstore.LeafHash("keyledger.key.ak_1", []byte(`{"a":1}`))
	want := leaf("keyledger.key.ak_1\n" + `{"a":1}`)
	if got != want {
		t.Errorf("LeafHash = %x, want %x", got, want)
	}
}
