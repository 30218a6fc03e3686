package ledger_test

import (
	"errors"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestService_MaxKeysPerUser: past the limit of unrevoked keys a user gets
// Conflict and nothing is appended; revoking a key frees a slot; other
// users are unaffected.
func TestService_MaxKeysPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const limit = 3
	svc := e.service(t, limit)
	alice, bob := e.register(t, "alice@example.com"), e.register(t, "bob@example.com")
	var first domain.Key
	for i := range limit {
		k, _, err := svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID})
		if err != nil {
			t.Fatalf("key %d: %v", i+1, err)
		}
		if i == 0 {
			first = k
		}
	}
	head := e.head(t)
	_, _, err := svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID})
	wantKind(t, err, domain.Conflict)
	if got := e.head(t); got != head {
		t.Fatalf("a refused create appended events: head %d -> %d", head, got)
	}
	if _, _, err := svc.CreateKey(testContext(t), ledger.CreateKey{UserID: bob.ID}); err != nil {
		t.Fatalf("another user: got %v, want nil", err)
	}
	if err := svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: first.APIKey}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID}); err != nil {
		t.Fatalf("after a revocation: got %v, want a free slot", err)
	}
}

// TestService_Login_BusyHashing: with every password hashing slot taken, a
// login answers Unavailable (auth.ErrBusy) at once, and those attempts do
// not count as failures against the address: afterwards the right
// password logs in, where ten counted failures would have throttled it.
func TestService_Login_BusyHashing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Slow enough that the logins below all find the one slot taken.
	passwords, err := auth.NewPasswords(auth.Argon2Params{Memory: 32 << 10, Time: 3, Threads: 1}, auth.WithMaxHashing(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ledger.New(ledger.Config{Log: e.store, Progress: e.projector, Keys: e.keys, Users: e.users, DataKeys: e.dataKeys,
		Passwords: passwords, Throttle: auth.NewThrottle(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "alice@example.com", Password: password}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = passwords.Hash("a hash that holds the only slot")
	}()
	natstest.Eventually(t, waitTimeout, func() bool { return passwords.InFlight() == 1 }, "slot taken")
	busy, failed := 0, 0
	for range 10 {
		_, err := svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: "wrong wrong wrong wrong"})
		switch {
		case errors.Is(err, auth.ErrBusy):
			busy++
			if domain.KindOf(err) != domain.Unavailable || domain.RetryAfterOf(err) <= 0 {
				t.Fatalf("got %v (kind %v), want Unavailable with a Retry-After", err, domain.KindOf(err))
			}
		case domain.KindOf(err) == domain.Unauthorized:
			failed++ // the slot came free: a real check
		default:
			t.Fatalf("got %v, want auth.ErrBusy", err)
		}
	}
	<-done
	if busy < 6 || failed >= 5 {
		t.Fatalf("got %d busy and %d checked attempts, want most busy (is the blocking hash too fast?)", busy, failed)
	}
	if _, err := svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password}); err != nil {
		t.Fatalf("after busy attempts: got %v, want the right password to log in", err)
	}
}
