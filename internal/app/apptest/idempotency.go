package apptest

import (
	"testing"
)

// WantAppended runs f and fails unless the log grew by exactly n events.
func (ts *Server) WantAppended(t *testing.T, n uint64, f func()) {
	t.Helper()
	head := StreamHead(t, ts)
	f()
	if got := StreamHead(t, ts); got != head+n {
		t.Errorf("got %d events appended, want %d", got-head, n)
	}
}
