package clustertest_test

import (
	"os"
	"testing"

	"github.com/keyledger/keyledger/internal/natsproc"
)

// TestMain lets natsproc start this test binary again as a nats-server
// process.
func TestMain(m *testing.M) {
	natsproc.Main()
	os.Exit(m.Run())
}
