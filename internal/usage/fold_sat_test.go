package usage

import (
	"math"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// TestCounts_Saturate: sums of forged reports stop at the largest count
// instead of wrapping around to a small one.
func TestCounts_Saturate(t *testing.T) {
	var c Counts
	for range 3 {
		c.add(KeyUsage{Valid: math.MaxUint64 / 2, Refused: map[domain.Reason]uint64{domain.ReasonRevoked: math.MaxUint64 / 2}})
	}
	if c.Valid != math.MaxUint64 || c.Refused[domain.ReasonRevoked] != math.MaxUint64 || c.Total() != math.MaxUint64 {
		t.Fatalf("got valid %d, refused %d, total %d; want each the largest count", c.Valid, c.Refused[domain.ReasonRevoked], c.Total())
	}
}
