package eventstore

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keyledger/keyledger/domain"
)

// refFactory hashes with the library's own RFC 6962 hasher.
var refFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// refRoot is the RFC 6962 root of leaves, computed from scratch.
func refRoot(leaves []domain.Hash) domain.Hash {
	if len(leaves) == 0 {
		return sha256.Sum256(nil)
	}
	r := refFactory.NewEmptyRange(0)
	for _, l := range leaves {
		_ = r.Append(append([]byte(nil), l[:]...), nil)
	}
	h, _ := r.GetRootHash(nil)
	return domain.Hash(h)
}

func testLeaf(i int) domain.Hash {
	return LeafHash("keyledger.key.x", fmt.Appendf(nil, "message %d", i))
}

// TestLiveTree_Check: checkpoints of recent sizes match the tree's roots
// there, whatever the base has become; a wrong root, a missing message and
// a size at or after the checkpoint's own position are mismatches; a size
// further back than the window is too old.
func TestLiveTree_Check(t *testing.T) {
	const window = 8
	var leaves []domain.Hash
	tree := newLiveTree(window)
	add := func(n int) {
		for range n {
			leaves = append(leaves, testLeaf(len(leaves)+1))
			tree.observe(uint64(len(leaves)), leaves[len(leaves)-1])
		}
	}
	checkAt := func(size uint64) error {
		return tree.check(uint64(len(leaves))+1, domain.LogCheckpoint{Size: size, Root: refRoot(leaves[:size])})
	}
	add(3)
	if err := checkAt(3); err != nil {
		t.Fatalf("size 3 right after: %v", err)
	}
	if err := checkAt(3); err != nil { // again: the base itself
		t.Fatalf("size 3 again: %v", err)
	}
	for _, step := range []struct{ add, back int }{{1, 0}, {5, 2}, {7, 7}, {20, 3}, {100, 8}, {1, 1}, {33, 0}} {
		add(step.add)
		size := uint64(len(leaves) - step.back)
		if err := checkAt(size); err != nil {
			t.Fatalf("size %d, %d messages before the checkpoint: %v", size, step.back, err)
		}
		if got := tree.base.End(); got != size {
			t.Errorf("after a check at %d the base ends at %d", size, got)
		}
	}
	// Never checked: the window bounds what is kept, the base follows.
	add(5 * window)
	if n := len(tree.recent); n < window || n >= 2*window {
		t.Errorf("keeps %d leaves, want between %d and %d", n, window, 2*window)
	}
	if err := checkAt(uint64(len(leaves) - window)); err != nil {
		t.Errorf("a size window messages back: %v", err)
	}
	add(3 * window)
	if err := checkAt(uint64(len(leaves) - 2*window)); !errors.Is(err, ErrCheckpointTooOld) {
		t.Errorf("a size 2*window back: got %v, want ErrCheckpointTooOld", err)
	}

	t.Run("WrongRoot", func(t *testing.T) {
		err := tree.check(uint64(len(leaves))+1, domain.LogCheckpoint{Size: uint64(len(leaves) - 1), Root: refRoot(leaves[:len(leaves)-2])})
		if !errors.Is(err, ErrCheckpointMismatch) {
			t.Fatalf("got %v, want ErrCheckpointMismatch", err)
		}
	})
	t.Run("BeyondItsPosition", func(t *testing.T) {
		seq := uint64(len(leaves))
		if err := tree.check(seq, domain.LogCheckpoint{Size: seq, Root: refRoot(leaves[:seq])}); !errors.Is(err, ErrCheckpointMismatch) {
			t.Fatalf("got %v, want ErrCheckpointMismatch", err)
		}
	})
	t.Run("Gap", func(t *testing.T) {
		tree := newLiveTree(window)
		var leaves []domain.Hash
		for i := 1; i <= 10; i++ {
			leaves = append(leaves, testLeaf(i))
			if i != 6 { // never delivered
				tree.observe(uint64(i), leaves[i-1])
			}
		}
		if err := tree.check(11, domain.LogCheckpoint{Size: 5, Root: refRoot(leaves[:5])}); err != nil {
			t.Errorf("a size before the gap: %v", err)
		}
		if err := tree.check(11, domain.LogCheckpoint{Size: 8, Root: refRoot(leaves[:8])}); !errors.Is(err, ErrCheckpointMismatch) {
			t.Errorf("a size after the gap: got %v, want ErrCheckpointMismatch", err)
		}
	})
	t.Run("Redelivered", func(t *testing.T) {
		tree := newLiveTree(window)
		var leaves []domain.Hash
		for i := 1; i <= 4; i++ {
			leaves = append(leaves, testLeaf(i))
			tree.observe(uint64(i), leaves[i-1])
			tree.observe(uint64(i), testLeaf(100+i)) // a consumer reset delivers it again
		}
		if err := tree.check(5, domain.LogCheckpoint{Size: 4, Root: refRoot(leaves)}); err != nil {
			t.Errorf("got %v, want a match", err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if err := newLiveTree(window).check(1, domain.LogCheckpoint{Size: 0, Root: sha256.Sum256(nil)}); err != nil {
			t.Errorf("got %v, want a match", err)
		}
	})
}

// BenchmarkLiveTree_Observe is the cost a checking subscription adds per
// message: the leaf hash and the tree's bookkeeping, with a matching
// checkpoint every 1000 messages whose size is 10 messages back.
func BenchmarkLiveTree_Observe(b *testing.B) {
	data := make([]byte, 400)
	const subject = "keyledger.key.ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
	leaf := LeafHash(subject, data)
	roots := map[uint64]domain.Hash{}
	ref := refFactory.NewEmptyRange(0)
	for seq := uint64(1); seq <= uint64(b.N); seq++ {
		_ = ref.Append(append([]byte(nil), leaf[:]...), nil)
		if (seq+10)%1000 == 0 {
			h, _ := ref.GetRootHash(nil)
			roots[seq] = domain.Hash(h)
		}
	}
	tree := newLiveTree(DefaultCheckpointWindow)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		seq := uint64(i + 1)
		tree.observe(seq, LeafHash(subject, data))
		if seq%1000 == 0 {
			if err := tree.check(seq+1, domain.LogCheckpoint{Size: seq - 10, Root: roots[seq-10]}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
