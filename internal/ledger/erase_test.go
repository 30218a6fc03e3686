package ledger_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestService_EraseMe: a user erases their account with their password.
// Afterwards the user is erased in the read model, their keys are revoked
// (with a reason) and refused, their data key is gone, the address logs in
// like an unknown one, and it can register again.
func TestService_EraseMe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	k1, s1 := e.createKey(t, alice.ID)
	k2, _ := e.createKey(t, alice.ID)

	t.Run("ErrWrongPassword", func(t *testing.T) {
		head := e.head(t)
		err := e.svc.EraseMe(testContext(t), ledger.EraseMe{UserID: alice.ID, Password: password + "!"})
		wantKind(t, err, domain.Forbidden)
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
	})
	t.Run("ErrUnknownUser", func(t *testing.T) {
		err := e.svc.EraseMe(testContext(t), ledger.EraseMe{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Password: password})
		wantKind(t, err, domain.NotFound)
	})

	if err := e.svc.EraseMe(testContext(t), ledger.EraseMe{UserID: alice.ID, Password: password}); err != nil {
		t.Fatalf("EraseMe: got %v, want nil", err)
	}
	u, ok := e.users.ByID(alice.ID)
	if !ok || !u.Erased || u.Personal != "" {
		t.Errorf("read model: got %+v, want alice erased with nothing sealed", u)
	}
	for _, k := range []domain.Key{k1, k2} {
		events := e.load(t, domain.CategoryKey, k.APIKey)
		last := events[len(events)-1]
		if d, ok := last.Data.(domain.KeyRevoked); !ok || d.Reason != "user erased" || last.Actor != alice.ID {
			t.Errorf("key %s: got last event %s %+v by %s, want key.revoked \"user erased\" by alice", k.APIKey, last.Type, last.Data, last.Actor)
		}
	}
	if got := e.validate(t, k1.APIKey, s1); got == "ok" {
		t.Errorf("the erased user's key validates, want refused")
	}
	if _, err := e.dataKeys.Get(testContext(t), alice.ID); domain.KindOf(err) != domain.NotFound {
		t.Errorf("data key after erasure: got %v, want not found", err)
	}
	if e.dataKeys.Cached(alice.ID) {
		t.Error("the data key is still cached after erasure")
	}
	_, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password})
	wantKind(t, err, domain.Unauthorized)
	if _, ok := e.byEmail(t, "alice@example.com"); ok {
		t.Error("UserByEmail after erasure: got found, want not found")
	}
	events := e.load(t, domain.CategoryUser, alice.ID)
	if last := events[len(events)-1]; last.Type != domain.TypeUserErased || last.Actor != alice.ID {
		t.Errorf("got last event %s by %s, want user.erased by alice", last.Type, last.Actor)
	}
	err = e.svc.EraseMe(testContext(t), ledger.EraseMe{UserID: alice.ID, Password: password})
	wantKind(t, err, domain.NotFound)

	t.Run("RegisterAgain", func(t *testing.T) {
		again, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "alice@example.com", Password: password + " anew"})
		if err != nil {
			t.Fatalf("RegisterUser after erasure: got %v, want nil", err)
		}
		if again.ID == alice.ID || again.Email != "alice@example.com" {
			t.Errorf("got %+v, want a new user with the address", again)
		}
		if _, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password + " anew"}); err != nil {
			t.Errorf("Login of the new user: got %v, want nil", err)
		}
		res := e.load(t, domain.CategoryEmail, e.emailAggregate(t, "alice@example.com"))
		if len(res) != 2 || res[1].Version != 2 || res[1].Prev != res[0].Hash {
			t.Errorf("got %d reservation events, want 2 chained", len(res))
		}
		_, err = e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "alice@example.com", Password: password})
		wantKind(t, err, domain.Conflict)
	})
}

// TestService_EraseUser: an admin erases a user; the command returns the
// revoked keys, refuses an unknown user, and run again finishes the job
// without appending anything.
func TestService_EraseUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.register(t, "bob@example.com")
	k, _ := e.createKey(t, bob.ID)
	_, err := e.svc.EraseUser(testContext(t), ledger.EraseUser{Actor: rootActor, UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C"})
	wantKind(t, err, domain.NotFound)
	revoked, err := e.svc.EraseUser(testContext(t), ledger.EraseUser{Actor: rootActor, UserID: bob.ID, Reason: "GDPR request 42"})
	if err != nil || len(revoked) != 1 || revoked[0] != k.APIKey {
		t.Fatalf("EraseUser: got %v, %v, want [%s], nil", revoked, err, k.APIKey)
	}
	events := e.load(t, domain.CategoryUser, bob.ID)
	if last := events[len(events)-1]; last.Actor != rootActor || last.Data.(domain.UserErased).Reason != "GDPR request 42" {
		t.Errorf("got %+v, want user.erased by %s with the reason", last, rootActor)
	}
	head := e.head(t)
	if revoked, err := e.svc.EraseUser(testContext(t), ledger.EraseUser{Actor: rootActor, UserID: bob.ID}); err != nil || len(revoked) != 0 {
		t.Errorf("erasing again: got %v, %v, want nothing, nil", revoked, err)
	}
	if got := e.head(t); got != head {
		t.Errorf("erasing again: head %d, want %d", got, head)
	}
	err = e.svc.DisableUser(testContext(t), ledger.DisableUser{Actor: rootActor, UserID: bob.ID})
	wantKind(t, err, domain.NotFound)
}

// TestService_MissingDataKey: a user who is not erased but whose data key
// is gone cannot log in; the ledger says so loudly (an Internal error and
// a count), and does not crash.
func TestService_MissingDataKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	carol := e.register(t, "carol@example.com")
	if err := e.dataKeys.Destroy(testContext(t), carol.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Login(testContext(t), ledger.Login{Email: "carol@example.com", Password: password})
	wantKind(t, err, domain.Internal)
	if n := e.svc.MissingDataKeys(); n == 0 {
		t.Error("MissingDataKeys: got 0, want the failure counted")
	}
}

// TestService_LegacyRegistration: a user registered before sealing (a
// bare SHA-256 reservation, email and hash in clear) still logs in, and
// the address stays taken under the keyed reservation too.
func TestService_LegacyRegistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	template := e.register(t, "template@example.com") // for a real password hash
	const userID = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1D"
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for subject, body := range map[string]string{
		"keyledger.email." + domain.LegacyEmailAggregate("old@example.com"): fmt.Sprintf(
			`{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B7A","type":"email.reserved","schema":1,"aggregate":%q,"version":1,"time":"2026-01-01T00:00:00Z","actor":%q,"data":{"user_id":%q}}`,
			domain.LegacyEmailAggregate("old@example.com"), userID, userID),
		"keyledger.user." + userID: fmt.Sprintf(
			`{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B7B","type":"user.registered","schema":1,"aggregate":%q,"version":1,"time":"2026-01-01T00:00:00Z","actor":%q,"data":{"email":"old@example.com","password_hash":%q}}`,
			userID, userID, template.PasswordHash),
	} {
		m := nats.NewMsg(subject)
		m.Data = []byte(body)
		eventstore.Sign(testkeys.Ledger(), m)
		ack, err := js.PublishMsg(testContext(t), m)
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, ack.Sequence)
	}
	if err := e.projector.WaitFor(testContext(t), last); err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.Login(testContext(t), ledger.Login{Email: "old@example.com", Password: password})
	if err != nil || u.ID != userID {
		t.Fatalf("Login of a legacy user: got %+v, %v, want %s", u, err, userID)
	}
	_, err = e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "old@example.com", Password: password})
	wantKind(t, err, domain.Conflict)

	// Erasing a legacy user forgets them in the read models (the clear
	// values stay in the old event: such logs cannot be shredded).
	if _, err := e.svc.EraseUser(testContext(t), ledger.EraseUser{Actor: rootActor, UserID: userID}); err != nil {
		t.Fatal(err)
	}
	if u, _ := e.users.ByID(userID); u.Email != "" || u.PasswordHash != "" {
		t.Errorf("got %+v, want no clear values in the read model", u)
	}
	if _, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "old@example.com", Password: password}); err != nil {
		t.Errorf("RegisterUser after erasing the legacy holder: got %v, want nil", err)
	}
}

// TestService_EraseReachesEveryInstance: two ledger instances share one
// log; the one that did not run the erasure drops the user's data key from
// memory when the event reaches it, and refuses the login too.
func TestService_EraseReachesEveryInstance(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	a := ledgertest.New(t, nc, eventstore.WithMemoryStorage())
	b := ledgertest.New(t, nc, eventstore.WithMemoryStorage())
	u := a.Register(t)
	ctx := testContext(t)
	head, err := a.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Projector.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Service.Login(ctx, ledger.Login{Email: u.Email, Password: ledgertest.Password}); err != nil {
		t.Fatalf("login on the other instance: %v", err)
	}
	if !b.DataKeys.Cached(u.ID) {
		t.Fatal("the other instance did not cache the data key: the test would prove nothing")
	}
	if _, err := a.Service.EraseUser(ctx, ledger.EraseUser{Actor: rootActor, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, waitTimeout, func() bool { return !b.DataKeys.Cached(u.ID) }, "the other instance forgets the data key")
	_, err = b.Service.Login(ctx, ledger.Login{Email: u.Email, Password: ledgertest.Password})
	wantKind(t, err, domain.Unauthorized)
}
