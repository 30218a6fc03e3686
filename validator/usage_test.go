package validator_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/validator"
)

// TestValidator_Usage: a node counts each validation of a key it knows,
// valid and refused by reason, with the last valid use.
func TestValidator_Usage(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	c := usage.NewCounters(0, time.Now())
	v, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithUsage(c))
	awaitReady(t, v)
	before := time.Now()
	for range 3 {
		wantAccepted(t, v, k, secret)
	}
	wrong, err := domain.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		wantRejected(t, v, k.APIKey, wrong)
	}
	r := c.Take("n1", time.Now())
	if len(r.Keys) != 1 {
		t.Fatalf("report keys: got %+v, want one", r.Keys)
	}
	got := r.Keys[0]
	if got.APIKey != k.APIKey || got.Valid != 3 || got.Refused[domain.ReasonWrongSecret] != 2 || len(got.Refused) != 1 {
		t.Fatalf("usage: got %+v, want 3 valid and 2 wrong_secret", got)
	}
	if got.LastUsed == nil || got.LastUsed.Before(before) {
		t.Fatalf("last used: got %v, want at or after %v", got.LastUsed, before)
	}
}

// TestValidator_Usage_UnknownKeysNotCounted is the attack of a client that
// sends made-up key ids to grow a node's usage counters (and the report
// every node publishes) without bound: a key id the log does not hold is
// never counted, whatever the secret or signature.
func TestValidator_Usage_UnknownKeysNotCounted(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	c := usage.NewCounters(0, time.Now())
	v, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithUsage(c))
	awaitReady(t, v)
	s, err := domain.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		apiKey := domain.APIKeyPrefix + ulid.Make().String()
		if _, err := v.Validate(context.Background(), apiKey, s.Reveal()); err == nil {
			t.Fatal("an unknown key validated")
		}
	}
	if r := c.Take("n1", time.Now()); len(r.Keys) != 0 {
		t.Fatalf("unknown keys counted: %d keys in the report", len(r.Keys))
	}
}
