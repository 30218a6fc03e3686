package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// TestOwnSignatures_Bounded: the store remembers at most
// ownSignaturesKept of its signatures, the newest ones, and nothing it
// did not add.
func TestOwnSignatures_Bounded(t *testing.T) {
	t.Parallel()
	digest := func(i int) [sha256.Size]byte {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		return ownDigest("keyledger.key.k", b[:], []byte("sig"))
	}
	var o ownSignatures
	const n = ownSignaturesKept + 100
	for i := range n {
		o.add(digest(i))
		o.add(digest(i)) // twice: still one entry
	}
	if len(o.set) != ownSignaturesKept {
		t.Fatalf("remembers %d signatures, want at most %d", len(o.set), ownSignaturesKept)
	}
	for i := range n {
		if got, want := o.made(digest(i)), i >= n-ownSignaturesKept; got != want {
			t.Fatalf("signature %d remembered: %v, want %v", i, got, want)
		}
	}
	if o.made(digest(n)) {
		t.Fatal("remembers a signature never added")
	}
}
