package handlers_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestAPI_RevokeNotInForce is the silent revocation failure over HTTP: the
// read models no longer trust the key the ledger signs with (retired while
// it kept running), so its
// revocation is stored but applied nowhere. DELETE must answer 500 with
// the JSON error, never 204, and the key must be as valid as before.
func TestAPI_RevokeNotInForce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	key, secret, err := h.service.CreateKey(ledgertest.Context(t), ledger.CreateKey{UserID: h.alice.ID, Name: "leaked"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.config
	cfg.Ledger = h.ledger.WritingAs(t, testkeys.Key("untrusted ledger"))
	api, err := handlers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.api = api

	r := h.do("DELETE", "/api-keys/"+key.APIKey, "192.0.2.1:1", "", "Authorization", "Bearer "+h.token)
	wantStatus(t, r, http.StatusInternalServerError)
	if code := r.errorCode(t); code != "internal" {
		t.Errorf("error code: got %q, want internal", code)
	}
	if res := h.ledger.Lookup.Check(key.APIKey, secret, time.Now()); !res.OK {
		t.Errorf("Check after the failed revocation: got %q, want still valid (so the 500 told the truth)", res.Reason)
	}
}
