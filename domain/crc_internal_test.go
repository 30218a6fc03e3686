package domain

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestCRC32IEEE_MatchesLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 200 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if got, want := crc32IEEE(string(b)), crc32.ChecksumIEEE(b); got != want {
			t.Fatalf("length %d: got %08x, want %08x", n, got, want)
		}
	}
}
