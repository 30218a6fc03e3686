package projections

import (
	"testing"
	"unsafe"
)

// TestLookupEntrySize keeps the packed entry at 84 bytes: every byte is
// paid a million times on a validation node.
func TestLookupEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(lookupEntry{}); got != 84 {
		t.Errorf("lookupEntry: got %d bytes, want 84", got)
	}
	for _, ms := range []int64{noTime, 1, 1793529015123, 1<<48 - 2} {
		if got := getMilli48(putMilli48(ms)); got != ms {
			t.Errorf("milli48(%d): got %d", ms, got)
		}
	}
	if got := getMilli48(putMilli48(-5)); got != 1 {
		t.Errorf("milli48(-5): got %d, want 1 (passed long ago)", got)
	}
	if got := getMilli48(putMilli48(1 << 50)); got != 1<<48-2 {
		t.Errorf("milli48(2^50): got %d, want the largest", got)
	}
}
