package handlers_test

import (
	"testing"

	"github.com/keyledger/keyledger/handlers"
)

// TestNew_RequiresAdminNonces: without the shared record of admin nonces
// there is no API, rather than one that accepts replayed admin requests.
func TestNew_RequiresAdminNonces(t *testing.T) {
	t.Parallel()
	cfg := newHarness(t, nil).config
	cfg.AdminNonces = nil
	if _, err := handlers.New(cfg); err == nil {
		t.Fatal("New without AdminNonces: got an API, want an error")
	}
}
