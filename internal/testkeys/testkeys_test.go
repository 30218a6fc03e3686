package testkeys_test

import (
	"encoding/hex"
	"testing"

	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestKey_Fixed freezes the test ledger's key: tests and testdata may rely
// on it, so it must not change by accident.
func TestKey_Fixed(t *testing.T) {
	const want = "3d17c8928b8696e422c50f3d1a227924aa7852597d0fcd18f523019011e87cdd"
	if got := hex.EncodeToString(testkeys.LedgerPublic()); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if !testkeys.Key("ledger").Equal(testkeys.Ledger()) {
		t.Fatal("got another key for the same name, want the same")
	}
	if testkeys.Key("second ledger").Equal(testkeys.Ledger()) {
		t.Fatal("got the same key for two names, want different ones")
	}
}
