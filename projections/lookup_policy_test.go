package projections_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// policyHistory folds one key's events into a Lookup and a domain.Key side
// by side, so that the packed key can be held to the whole one.
type policyHistory struct {
	t       *testing.T
	lookup  *projections.Lookup
	key     domain.Key
	apiKey  string
	userID  string
	version uint64
}

func newPolicyHistory(t *testing.T, lookup *projections.Lookup, d domain.KeyCreated) *policyHistory {
	h := &policyHistory{t: t, lookup: lookup, apiKey: newAPIKey(), userID: newUserID()}
	d.UserID = h.userID
	h.apply(d)
	return h
}

func (h *policyHistory) apply(d domain.EventData) {
	h.t.Helper()
	h.version++
	e := domain.Event{Type: d.EventType(), Schema: domain.SchemaFor(d), Aggregate: h.apiKey,
		Version: h.version, Time: t0.Add(time.Duration(h.version) * time.Minute), Actor: h.userID, Data: d}
	if err := h.key.Apply(e); err != nil {
		h.t.Fatalf("domain Apply(%s): %v", e.Type, err)
	}
	if err := h.lookup.Apply(e); err != nil {
		h.t.Fatalf("Lookup.Apply(%s): %v", e.Type, err)
	}
}

// check validates secret at now in the lookup, demands the reason the
// domain gives for the whole key, and returns the result.
func (h *policyHistory) check(secret domain.Secret, now time.Time, want domain.Reason) projections.Result {
	h.t.Helper()
	res := h.lookup.Check(h.apiKey, secret, now)
	if res.Reason != want {
		h.t.Errorf("Check at %v: got %v, want %v", now, res.Reason, want)
	}
	if got := h.key.CheckSecret(secret, false, now); got != want {
		h.t.Errorf("domain CheckSecret at %v: got %v, want %v", now, got, want)
	}
	return res
}

func TestLookup_ScopesAndMetadata(t *testing.T) {
	t.Parallel()
	l := projections.NewLookup(0)
	s := lookupSecret(t, 1)
	h := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: s.Hash(), PublicKey: domain.PublicKey{1},
		Scopes: []string{"orders:*", "billing:read"}, Metadata: json.RawMessage(`{"plan":"pro"}`)})
	other := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: s.Hash(), PublicKey: domain.PublicKey{1},
		Scopes: []string{"billing:read", "orders:*"}})
	res := h.check(s, t0.Add(time.Hour), domain.ReasonOK)
	if res.Scopes != "billing:read orders:*" || res.Metadata != `{"plan":"pro"}` || res.UserID != h.userID {
		t.Errorf("got %+v, want the key's scopes and metadata", res)
	}
	if res := other.check(s, t0.Add(time.Hour), domain.ReasonOK); res.Scopes != "billing:read orders:*" || res.Metadata != "" {
		t.Errorf("other key: got %+v, want its scopes and no metadata", res)
	}
	h.apply(domain.KeyRenamed{Name: "orders service"})
	if res := h.check(s, t0.Add(time.Hour), domain.ReasonOK); res.Name != "orders service" {
		t.Errorf("Name: got %q, want the new name", res.Name)
	}
	h.apply(domain.KeyScopesChanged{Scopes: []string{"orders:read"}})
	h.apply(domain.KeyMetadataChanged{})
	res = h.check(s, t0.Add(time.Hour), domain.ReasonOK)
	if res.Scopes != "orders:read" || res.Metadata != "" || res.Name != "orders service" {
		t.Errorf("after edits: got scopes %q metadata %q, want orders:read and none", res.Scopes, res.Metadata)
	}
	if res := other.check(s, t0.Add(time.Hour), domain.ReasonOK); res.Scopes != "billing:read orders:*" {
		t.Errorf("other key after an edit of the first: got %q, want its own scopes kept", res.Scopes)
	}
	// Refusals carry nothing of the key.
	wrong := lookupSecret(t, 9)
	if res := h.check(wrong, t0.Add(time.Hour), domain.ReasonWrongSecret); res.Scopes != "" || res.Metadata != "" {
		t.Errorf("refusal: got %+v, want no scopes or metadata", res)
	}
}

func TestLookup_DisableEnable(t *testing.T) {
	t.Parallel()
	l := projections.NewLookup(0)
	s := lookupSecret(t, 2)
	h := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: s.Hash(), PublicKey: domain.PublicKey{1}})
	h.apply(domain.KeyDisabled{})
	h.check(s, t0.Add(time.Hour), domain.ReasonKeyDisabled)
	if _, res := l.Signer(h.apiKey, t0.Add(time.Hour)); res.Reason != domain.ReasonKeyDisabled {
		t.Errorf("Signer of a disabled key: got %v, want %v", res.Reason, domain.ReasonKeyDisabled)
	}
	h.apply(domain.KeyEnabled{})
	h.check(s, t0.Add(time.Hour), domain.ReasonOK)
	h.apply(domain.KeyDisabled{})
	h.apply(domain.KeyRevoked{})
	h.check(s, t0.Add(time.Hour), domain.ReasonRevoked)
}

// TestLookup_GracePeriod: the previous secret validates strictly before
// its deadline, and not after (a millisecond is the lookup's grain: the
// deadline is never late); another regeneration, a disable or a revoke
// ends it at once.
func TestLookup_GracePeriod(t *testing.T) {
	t.Parallel()
	l := projections.NewLookup(0)
	first, second, third := lookupSecret(t, 3), lookupSecret(t, 4), lookupSecret(t, 5)
	h := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: first.Hash(), PublicKey: domain.PublicKey{1}})
	deadline := t0.Add(2 * time.Hour)
	h.apply(domain.KeySecretRegenerated{SecretHash: second.Hash(), PublicKey: domain.PublicKey{2}, PreviousExpiresAt: &deadline})
	h.check(first, deadline.Add(-time.Millisecond), domain.ReasonOK)
	h.check(first, deadline, domain.ReasonWrongSecret)
	h.check(second, deadline, domain.ReasonOK)
	h.check(third, t0, domain.ReasonWrongSecret)

	h.apply(domain.KeyRenamed{Name: "renamed"}) // an edit keeps the grace period
	h.check(first, deadline.Add(-time.Millisecond), domain.ReasonOK)

	h.apply(domain.KeySecretRegenerated{SecretHash: third.Hash(), PublicKey: domain.PublicKey{3}, PreviousExpiresAt: &deadline})
	h.check(first, t0, domain.ReasonWrongSecret)
	h.check(second, t0, domain.ReasonOK)
	h.apply(domain.KeyDisabled{})
	h.apply(domain.KeyEnabled{})
	h.check(second, t0, domain.ReasonWrongSecret)
	h.check(third, t0, domain.ReasonOK)

	r := newPolicyHistory(t, l, domain.KeyCreated{SecretHash: first.Hash(), PublicKey: domain.PublicKey{1}})
	r.apply(domain.KeySecretRegenerated{SecretHash: second.Hash(), PublicKey: domain.PublicKey{2}, PreviousExpiresAt: &deadline})
	r.apply(domain.KeyRevoked{})
	r.check(first, t0, domain.ReasonWrongSecret)
	r.check(second, t0, domain.ReasonRevoked)
}
