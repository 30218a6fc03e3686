package ledger_test

import (
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// TestService_MaxKeysPerUser: past the limit of unrevoked keys a user gets
// Conflict and nothing is appended; revoking a key frees a slot; other
// users are unaffected.
func TestService_MaxKeysPerUser(t *testing.T) {
	e := newEnv(t)
	const limit = 3
	svc := e.service(t, limit)
	alice, bob := e.register(t, "alice@example.com"), e.register(t, "bob@example.com")
	var first domain.Key
	for i := range limit {
		k, _, err := svc.CreateKey(testContext(t), alice.ID, "", time.Time{})
		if err != nil {
			t.Fatalf("key %d: %v", i+1, err)
		}
		if i == 0 {
			first = k
		}
	}
	head := e.head(t)
	_, _, err := svc.CreateKey(testContext(t), alice.ID, "", time.Time{})
	wantKind(t, err, domain.Conflict)
	if got := e.head(t); got != head {
		t.Fatalf("a refused create appended events: head %d -> %d", head, got)
	}
	if _, _, err := svc.CreateKey(testContext(t), bob.ID, "", time.Time{}); err != nil {
		t.Fatalf("another user: got %v, want nil", err)
	}
	if err := svc.RevokeKey(testContext(t), alice.ID, first.APIKey); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateKey(testContext(t), alice.ID, "", time.Time{}); err != nil {
		t.Fatalf("after a revocation: got %v, want a free slot", err)
	}
}
