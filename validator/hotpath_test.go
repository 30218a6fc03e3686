package validator_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// TestValidate_HitAllocations: a successful validation allocates
// nothing, whether the key has scopes or not (Identity's Scopes and
// Metadata are shared, read-only).
func TestValidate_HitAllocations(t *testing.T) { // not parallel: AllocsPerRun
	e := startLedger(t)
	plain, plainSecret := e.l.CreateKey(t, e.user.ID)
	scoped, scopedSecret, err := e.l.Service.CreateKey(ledgertest.Context(t),
		ledger.CreateKey{UserID: e.user.ID, Name: "scoped", Scopes: []string{"read", "write"}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)
	ctx := context.Background()
	for _, c := range []struct {
		k      domain.Key
		secret string
	}{{plain, plainSecret.Reveal()}, {scoped, scopedSecret.Reveal()}} {
		if _, err := v.Validate(ctx, c.k.APIKey, c.secret); err != nil {
			t.Fatal(err) // applied already: CreateKey waits for the ledger's projector, awaitReady for the node's
		}
		if n := testing.AllocsPerRun(200, func() {
			if _, err := v.Validate(ctx, c.k.APIKey, c.secret); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Validate hit of %s: %v allocations, want none", c.k.Name, n)
		}
	}
	id, err := v.Validate(ctx, scoped.APIKey, scopedSecret.Reveal())
	if err != nil || !slices.Equal(id.Scopes, []string{"read", "write"}) || string(id.Metadata) != "{}" {
		t.Errorf("scoped key: got %v, %q, %v, want its scopes and {}", id.Scopes, id.Metadata, err)
	}
}

// TestValidate_MalformedSecretOfSecretForm: a secret of a secret's length
// and prefix is checked in full only once it matched no key; a bad
// checksum or alphabet is still refused as malformed, not as a failure of
// the key: it counts towards no limit.
func TestValidate_MalformedSecretOfSecretForm(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	v, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithFailureLimit(2, time.Minute))
	awaitReady(t, v)
	ctx, s := context.Background(), secret.Reveal()
	malformed := []string{flip(s, len(s)-1), s[:10] + "-" + s[11:], s[:len(s)-7] + "\x00" + s[len(s)-6:]}
	for range 3 {
		for _, m := range malformed {
			if _, err := v.Validate(ctx, k.APIKey, m); !errors.Is(err, validator.ErrUnauthorized) ||
				errors.Is(err, validator.ErrRateLimited) {
				t.Fatalf("malformed secret: got %v, want ErrUnauthorized and no limit", err)
			}
		}
	}
	if got := scrapeValue(t, v, `keyledger_validations_total{outcome="malformed"}`); got != float64(3*len(malformed)) {
		t.Errorf("malformed outcomes: got %v, want %d", got, 3*len(malformed))
	}
	if got := scrapeValue(t, v, `keyledger_validations_total{outcome="wrong_secret"}`); got != 0 {
		t.Errorf("wrong_secret outcomes: got %v, want 0", got)
	}
	wantAccepted(t, v, k, secret)
	// A well-formed wrong secret does count.
	wrong, err := domain.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := v.Validate(ctx, k.APIKey, wrong.Reveal())
		if limited := errors.Is(err, validator.ErrRateLimited); limited != (i == 2) {
			t.Fatalf("wrong secret %d: got %v", i+1, err)
		}
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
