package ledger_test

import (
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// TestService_EditKey: an edit of several fields stores one event per
// change, all at once, and is in force when it returns; a stale IfVersion
// and someone else's key are refused.
func TestService_EditKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")
	k, _ := e.createKey(t, alice.ID)
	expires := t0.Add(48 * time.Hour)
	got, err := e.svc.EditKey(testContext(t), ledger.EditKey{UserID: alice.ID, APIKey: k.APIKey, IfVersion: k.Version,
		Edit: domain.KeyEdit{SetName: true, Name: "renamed", SetScopes: true, Scopes: []string{"orders:read"},
			SetMetadata: true, Metadata: []byte(`{"plan":"pro"}`), SetExpiresAt: true, ExpiresAt: expires}})
	if err != nil {
		t.Fatalf("EditKey: %v", err)
	}
	if got.Name != "renamed" || got.Scopes != "orders:read" || got.Metadata != `{"plan":"pro"}` ||
		!got.ExpiresAt.Equal(expires) || got.Version != k.Version+4 {
		t.Errorf("got %+v, want every field changed at version %d", got, k.Version+4)
	}
	events := e.load(t, domain.CategoryKey, k.APIKey)
	wantTypes := []string{domain.TypeKeyCreated, domain.TypeKeyRenamed, domain.TypeKeyScopesChanged,
		domain.TypeKeyMetadataChanged, domain.TypeKeyExpiryChanged}
	if len(events) != len(wantTypes) {
		t.Fatalf("got %d events, want %d", len(events), len(wantTypes))
	}
	for i, ev := range events {
		if ev.Type != wantTypes[i] || ev.Actor != alice.ID {
			t.Errorf("event %d: got %s by %s, want %s by %s", i, ev.Type, ev.Actor, wantTypes[i], alice.ID)
		}
	}
	if _, err := e.svc.EditKey(testContext(t), ledger.EditKey{UserID: alice.ID, APIKey: k.APIKey, IfVersion: k.Version,
		Edit: domain.KeyEdit{SetName: true, Name: "stale"}}); domain.KindOf(err) != domain.PreconditionFailed {
		t.Errorf("stale IfVersion: got %v, want PreconditionFailed", err)
	}
	if _, err := e.svc.EditKey(testContext(t), ledger.EditKey{UserID: bob.ID, APIKey: k.APIKey, IfVersion: 99,
		Edit: domain.KeyEdit{SetName: true, Name: "mine"}}); domain.KindOf(err) != domain.NotFound {
		t.Errorf("someone else's key, any version: got %v, want NotFound", err)
	}
	if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.EditKey(testContext(t), ledger.EditKey{UserID: alice.ID, APIKey: k.APIKey,
		Edit: domain.KeyEdit{SetName: true, Name: "late"}}); domain.KindOf(err) != domain.Conflict {
		t.Errorf("revoked key: got %v, want Conflict", err)
	}
}

// TestService_DisableAndGrace: disable and enable are in force when they
// return; a grace period keeps the old secret until its deadline on the
// service's clock.
func TestService_DisableAndGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	k, oldSecret := e.createKey(t, alice.ID)
	if err := e.svc.DisableKey(testContext(t), ledger.DisableKey{UserID: alice.ID, APIKey: k.APIKey, Reason: "pause"}); err != nil {
		t.Fatal(err)
	}
	if got := e.validate(t, k.APIKey, oldSecret); got != string(domain.ReasonKeyDisabled) {
		t.Errorf("disabled: got %s, want key_disabled", got)
	}
	if err := e.svc.EnableKey(testContext(t), ledger.EnableKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
		t.Fatal(err)
	}
	if got := e.validate(t, k.APIKey, oldSecret); got != "ok" {
		t.Errorf("enabled: got %s, want ok", got)
	}
	newSecret, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey,
		GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour - time.Millisecond)
	if got := e.validate(t, k.APIKey, oldSecret); got != "ok" {
		t.Errorf("old secret just before the deadline: got %s, want ok", got)
	}
	e.clock.Advance(time.Millisecond)
	if got := e.validate(t, k.APIKey, oldSecret); got != string(domain.ReasonWrongSecret) {
		t.Errorf("old secret at the deadline: got %s, want wrong_secret", got)
	}
	if got := e.validate(t, k.APIKey, newSecret); got != "ok" {
		t.Errorf("new secret: got %s, want ok", got)
	}
	if _, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey,
		GracePeriod: domain.MaxGracePeriod + time.Second}); domain.KindOf(err) != domain.Invalid {
		t.Errorf("grace period too long: got %v, want Invalid", err)
	}
	if err := e.svc.AdminDisableKey(testContext(t), ledger.AdminDisableKey{Actor: "admin:root", APIKey: k.APIKey}); err != nil {
		t.Fatal(err)
	}
	events := e.load(t, domain.CategoryKey, k.APIKey)
	if last := events[len(events)-1]; last.Type != domain.TypeKeyDisabled || last.Actor != "admin:root" {
		t.Errorf("admin disable: got %s by %s, want key.disabled by admin:root", last.Type, last.Actor)
	}
}
