package projections_test

import (
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// TestLookup_Limits: a validation hands out the key's limits (nil for a
// key without any), as the domain folds them: the credit epoch, the
// top-ups, a removal. A Limits handed out never changes afterwards: a
// change stores a new one. Refusals carry none.
func TestLookup_Limits(t *testing.T) {
	t.Parallel()
	l := projections.NewLookup(0)
	s := lookupSecret(t, 11)
	perMinute := &domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)}
	credits := &domain.Credits{Remaining: 50, Refill: &domain.Refill{Amount: 10, Interval: domain.Period(time.Hour)}}
	h := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: s.Hash(), PublicKey: domain.PublicKey{1},
		RateLimit: perMinute, Credits: credits})
	plain := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: s.Hash(), PublicKey: domain.PublicKey{1}})
	at := t0.Add(time.Hour)

	first := h.check(s, at, domain.ReasonOK).Limits
	checkLimits(t, "created", first, h.key.Limits())
	if first.Credits.Epoch != 1 || first.Credits.Initial != 50 || !first.Credits.Since.Equal(t0.Add(time.Minute)) {
		t.Errorf("created: got credits %+v, want epoch 1, initial 50, since the key.created", *first.Credits)
	}
	if res := plain.check(s, at, domain.ReasonOK); res.Limits != nil {
		t.Errorf("plain key: got limits %+v, want nil", res.Limits)
	}
	if res := h.check(lookupSecret(t, 12), at, domain.ReasonWrongSecret); res.Limits != nil {
		t.Errorf("refusal: got limits %+v, want nil", res.Limits)
	}

	h.apply(domain.KeyCreditsAdded{Add: 5})
	h.apply(domain.KeyRenamed{Name: "renamed"})
	topped := h.check(s, at, domain.ReasonOK).Limits
	checkLimits(t, "topped up", topped, h.key.Limits())
	if topped.Credits.Added != 5 || first.Credits.Added != 0 {
		t.Errorf("top-up: got added %d (first view %d), want 5 (and 0: never changed)", topped.Credits.Added, first.Credits.Added)
	}
	if topped.RateLimit != first.RateLimit {
		t.Errorf("top-up: the rate limit was copied, want it shared while unchanged")
	}

	h.apply(domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: 7}})
	checkLimits(t, "credits set anew", h.check(s, at, domain.ReasonOK).Limits, h.key.Limits())
	h.apply(domain.KeyRateLimitChanged{})
	checkLimits(t, "rate limit removed", h.check(s, at, domain.ReasonOK).Limits, h.key.Limits())
	h.apply(domain.KeyCreditsChanged{})
	if res := h.check(s, at, domain.ReasonOK); res.Limits != nil {
		t.Errorf("all removed: got %+v, want nil", res.Limits)
	}
	if first.RateLimit == nil || first.Credits.Initial != 50 {
		t.Errorf("first view changed: got %+v", *first)
	}
	// Limits added to a key created without any.
	plain.apply(domain.KeyRateLimitChanged{RateLimit: perMinute})
	checkLimits(t, "added later", plain.check(s, at, domain.ReasonOK).Limits, plain.key.Limits())
}

func checkLimits(t *testing.T, step string, got, want *domain.Limits) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Fatalf("%s: got %+v, want %+v", step, got, want)
		}
		return
	}
	if (got.RateLimit == nil) != (want.RateLimit == nil) || got.RateLimit != nil && *got.RateLimit != *want.RateLimit {
		t.Errorf("%s: rate limit: got %+v, want %+v", step, got.RateLimit, want.RateLimit)
	}
	if (got.Credits == nil) != (want.Credits == nil) {
		t.Fatalf("%s: credits: got %+v, want %+v", step, got.Credits, want.Credits)
	}
	if c, w := got.Credits, want.Credits; c != nil && (c.Epoch != w.Epoch || !c.Since.Equal(w.Since) || c.Initial != w.Initial ||
		c.Added != w.Added || (c.Refill == nil) != (w.Refill == nil) || c.Refill != nil && *c.Refill != *w.Refill) {
		t.Errorf("%s: credits: got %+v, want %+v", step, *c, *w)
	}
}

// TestLookup_CheckAllocations: limits cost a validation no allocation:
// a key with limits allocates what one without does (the owner's id and
// the name, handed out as strings), the Limits being shared, not copied.
func TestLookup_CheckAllocations(t *testing.T) {
	l := projections.NewLookup(0)
	s := lookupSecret(t, 13)
	plain := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: s.Hash(), PublicKey: domain.PublicKey{1}})
	limited := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: s.Hash(), PublicKey: domain.PublicKey{1},
		RateLimit: &domain.RateLimit{Limit: 1, Window: domain.Period(time.Second)}})
	base := testing.AllocsPerRun(100, func() { l.Check(plain.apiKey, s, t0) })
	if n := testing.AllocsPerRun(100, func() { l.Check(limited.apiKey, s, t0) }); n != base || base > 2 {
		t.Errorf("Check: got %v allocations with limits, %v without, want the same, at most 2", n, base)
	}
}
