package validator_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// TestValidate_HitAllocations: a successful validation of a key without
// metadata, scopes or limits allocates at most its metadata's "{}" (an
// Identity owns its Metadata, so that one cannot be shared).
func TestValidate_HitAllocations(t *testing.T) { // not parallel: AllocsPerRun
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)
	ctx, s := context.Background(), secret.Reveal()
	if n := testing.AllocsPerRun(200, func() {
		if _, err := v.Validate(ctx, k.APIKey, s); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("Validate hit: %v allocations, want at most 1", n)
	}
}

// TestValidator_ClosedNodeFailsClosed: validations read a coarse clock
// that a ticker of the node sets, stopped by Close; a closed node must
// not answer from the view it no longer follows.
func TestValidator_ClosedNodeFailsClosed(t *testing.T) {
	t.Parallel()
	const bound = 300 * time.Millisecond
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	v, err := validator.Open(ledgertest.Context(t), natstest.Connect(t, e.srv), slog.New(slog.DiscardHandler),
		validator.WithMaxStaleness(bound), validator.WithCheckInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	awaitReady(t, v)
	wantAccepted(t, v, k, secret)
	v.Close()
	natstest.Eventually(t, awaitTimeout, func() bool {
		_, err := v.Validate(context.Background(), k.APIKey, secret.Reveal())
		return domain.KindOf(err) == domain.Unavailable
	}, "closed node fails closed")
}
