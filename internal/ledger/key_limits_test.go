package ledger_test

import (
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// TestService_KeyLimits: a key created with limits stores one key.created
// of schema 4; an edit stores one event per changed limit, at once, in
// force when it returns; top-ups by the owner and an admin add up in the
// epoch and the next credits set start a new one. Someone else's key is
// NotFound, a key without credits or a revoked one Conflict.
func TestService_KeyLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")
	rate := &domain.RateLimit{Limit: 5, Window: domain.Period(time.Minute)}
	credits := &domain.Credits{Remaining: 100, Refill: &domain.Refill{Amount: 100, Interval: domain.Period(24 * time.Hour)}}
	k, _, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, RateLimit: rate, Credits: credits})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if k.RateLimit == nil || *k.RateLimit != *rate || k.Credits == nil || k.Credits.Initial != 100 || k.Credits.Epoch != 1 {
		t.Fatalf("created: got %+v, %+v, want the limits, epoch 1", k.RateLimit, k.Credits)
	}
	if ev := e.load(t, domain.CategoryKey, k.APIKey); len(ev) != 1 || ev[0].Schema != domain.KeyLimitsSchema {
		t.Fatalf("got %d events, schema %d, want one key.created of schema %d", len(ev), ev[0].Schema, domain.KeyLimitsSchema)
	}
	plain, _ := e.createKey(t, alice.ID)
	if ev := e.load(t, domain.CategoryKey, plain.APIKey); ev[0].Schema != domain.KeyPolicySchema {
		t.Errorf("plain key: got schema %d, want %d", ev[0].Schema, domain.KeyPolicySchema)
	}

	got, err := e.svc.AddCredits(testContext(t), ledger.AddCredits{UserID: alice.ID, APIKey: k.APIKey, Add: 20})
	if err != nil {
		t.Fatalf("AddCredits: %v", err)
	}
	got, err = e.svc.AdminAddCredits(testContext(t), ledger.AdminAddCredits{Actor: "admin:root", APIKey: k.APIKey, Add: 5, Reason: "sorry"})
	if err != nil {
		t.Fatalf("AdminAddCredits: %v", err)
	}
	if got.Credits.Added != 25 || got.Credits.Epoch != 1 || got.Version != 3 {
		t.Errorf("after top-ups: got %+v at version %d, want 25 added in epoch 1, version 3", *got.Credits, got.Version)
	}
	if last := e.lastEvent(t, domain.CategoryKey, k.APIKey); last.Actor != "admin:root" ||
		last.Data.(domain.KeyCreditsAdded) != (domain.KeyCreditsAdded{Add: 5, Reason: "sorry"}) {
		t.Errorf("admin top-up: got %s by %s %+v", last.Type, last.Actor, last.Data)
	}

	got, err = e.svc.EditKey(testContext(t), ledger.EditKey{UserID: alice.ID, APIKey: k.APIKey, IfVersion: 3,
		Edit: domain.KeyEdit{SetRateLimit: true, SetCredits: true, Credits: &domain.Credits{Remaining: 7}}})
	if err != nil {
		t.Fatalf("EditKey: %v", err)
	}
	if got.RateLimit != nil || got.Credits == nil || *got.Credits != (domain.CreditPolicy{Epoch: 5, Since: got.Credits.Since, Initial: 7}) ||
		got.Version != 5 {
		t.Errorf("after the edit: got %+v, %+v at version %d, want no rate limit, 7 credits in epoch 5", got.RateLimit, got.Credits, got.Version)
	}
	if _, err := e.svc.EditKey(testContext(t), ledger.EditKey{UserID: alice.ID, APIKey: k.APIKey, IfVersion: 3,
		Edit: domain.KeyEdit{SetRateLimit: true, RateLimit: rate}}); domain.KindOf(err) != domain.PreconditionFailed {
		t.Errorf("stale IfVersion: got %v, want PreconditionFailed", err)
	}
	e.wantNothingAppended(t, func() {
		_, err := e.svc.AddCredits(testContext(t), ledger.AddCredits{UserID: bob.ID, APIKey: k.APIKey, Add: 1})
		wantKind(t, err, domain.NotFound)
		_, err = e.svc.AddCredits(testContext(t), ledger.AddCredits{UserID: alice.ID, APIKey: plain.APIKey, Add: 1})
		wantKind(t, err, domain.Conflict)
		_, err = e.svc.AddCredits(testContext(t), ledger.AddCredits{UserID: alice.ID, APIKey: k.APIKey, Add: 0})
		wantKind(t, err, domain.Invalid)
		_, err = e.svc.AdminAddCredits(testContext(t), ledger.AdminAddCredits{Actor: "admin:root", APIKey: "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Add: 1})
		wantKind(t, err, domain.NotFound)
		_, err = e.svc.EditKey(testContext(t), ledger.EditKey{UserID: alice.ID, APIKey: k.APIKey,
			Edit: domain.KeyEdit{SetRateLimit: true, RateLimit: &domain.RateLimit{Limit: 1, Window: domain.Period(time.Millisecond)}}})
		wantKind(t, err, domain.Invalid)
	})
	if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AdminAddCredits(testContext(t), ledger.AdminAddCredits{Actor: "admin:root", APIKey: k.APIKey, Add: 1})
	wantKind(t, err, domain.Conflict)
}
