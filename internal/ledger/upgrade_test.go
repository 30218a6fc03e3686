package ledger_test

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestService_RevokeAfterUnknownEvent: an event of a type this code does
// not know (written by a newer version during a rolling upgrade) still
// takes a version and a sequence of its key, so a revocation appended after
// it succeeds and applies.
func TestService_RevokeAfterUnknownEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	k, secret := e.createKey(t, alice.ID)
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	// A newer ledger, whose key the ledger added to the log's trust, writes it.
	newer := testkeys.Key("newer ledger")
	if _, err := e.store.AddLedgerKey(testContext(t), newer.Public().(ed25519.PublicKey), "newer ledger", "system"); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("keyledger.key." + k.APIKey)
	m.Data = fmt.Appendf(nil, `{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B9Z","type":"key.future_thing","schema":1,"aggregate":%q,"version":2,"time":"2026-11-01T00:00:00Z","actor":"system","data":{}}`, k.APIKey)
	eventstore.Sign(newer, m)
	ack, err := js.PublishMsg(testContext(t), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.projector.WaitFor(testContext(t), ack.Sequence); err != nil {
		t.Fatal(err)
	}
	if got := e.validate(t, k.APIKey, secret); got != "ok" {
		t.Fatalf("before revocation: got %q, want ok", got)
	}
	if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
		t.Fatalf("RevokeKey: got %v, want nil", err)
	}
	if got := e.validate(t, k.APIKey, secret); got != string(domain.StatusRevoked) {
		t.Fatalf("after revocation: got %q, want revoked", got)
	}
	events := e.load(t, domain.CategoryKey, k.APIKey)
	if last := events[len(events)-1]; last.Type != domain.TypeKeyRevoked || last.Version != 3 {
		t.Fatalf("got last event %s v%d, want key.revoked v3", last.Type, last.Version)
	}
}

// TestService_RevokeAfterForgedEvent: a message the ledger did not sign,
// published straight onto a key's subject, is ignored by the read models
// and cannot block the owner from revoking the key.
func TestService_RevokeAfterForgedEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	k, secret := e.createKey(t, alice.ID)
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	forged := fmt.Sprintf(`{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B8Y","type":"key.secret_regenerated","schema":1,"aggregate":%q,"version":2,"time":"2026-11-01T00:00:00Z","actor":"attacker","data":{"secret_hash":"%064x"}}`, k.APIKey, 7)
	ack, err := js.Publish(testContext(t), "keyledger.key."+k.APIKey, []byte(forged))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.projector.WaitFor(testContext(t), ack.Sequence); err != nil {
		t.Fatal(err)
	}
	if got := e.validate(t, k.APIKey, secret); got != "ok" {
		t.Fatalf("after a forged regeneration: got %q, want the real secret still ok", got)
	}
	if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
		t.Fatalf("RevokeKey: got %v, want nil", err)
	}
	if got := e.validate(t, k.APIKey, secret); got != string(domain.StatusRevoked) {
		t.Fatalf("after revocation: got %q, want revoked", got)
	}
	events := e.load(t, domain.CategoryKey, k.APIKey)
	if len(events) != 2 || events[1].Type != domain.TypeKeyRevoked || events[1].Version != 2 {
		t.Fatalf("got %d events, want the creation and the revocation at version 2 (the forged one skipped)", len(events))
	}
}

// TestService_LoginThrottleConcurrent: guesses sent at once cannot slip
// past the limit while earlier ones are still being checked.
func TestService_LoginThrottleConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "target@example.com")
	const guesses = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	unauthorized, limited := 0, 0
	start := make(chan struct{})
	for i := range guesses {
		wg.Go(func() {
			<-start
			_, err := e.svc.Login(testContext(t), ledger.Login{Email: "target@example.com", Password: fmt.Sprintf("wrong guess number %02d", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case domain.KindOf(err) == domain.RateLimited && domain.RetryAfterOf(err) > 0:
				limited++
			case domain.KindOf(err) == domain.Unauthorized:
				unauthorized++
			default:
				t.Errorf("got %v, want Unauthorized or RateLimited", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if unauthorized != 5 || limited != guesses-5 {
		t.Fatalf("got %d checked and %d throttled, want 5 and %d", unauthorized, limited, guesses-5)
	}
}
